package gateway

import (
	"bufio"
	"errors"
	"io"
	"unicode/utf8"
)

// errLineTooLong reports a line of output over the outbound limit.
var errLineTooLong = errors.New("line too long")

// lineReader splits a child's output into lines, without their "\n" or
// "\r\n". A last line with no newline is returned when the output ends.
type lineReader struct {
	r    *bufio.Reader
	max  int    // longest line accepted, in bytes
	long []byte // a line longer than r's buffer, gathered piece by piece
}

func newLineReader(r io.Reader, bufSize, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, bufSize), max: max}
}

// next returns the next line. The slice is valid until the following call.
// At the end of output it returns io.EOF; a line over the limit returns
// errLineTooLong, after which the reader must not be used for lines.
func (l *lineReader) next() ([]byte, error) {
	l.long = l.long[:0]
	for {
		chunk, err := l.r.ReadSlice('\n')
		switch {
		case err == nil:
			if len(l.long) == 0 {
				return trimCR(chunk[:len(chunk)-1]), l.checkLen(len(chunk) - 1)
			}
			l.long = append(l.long, chunk...)
			return trimCR(l.long[:len(l.long)-1]), l.checkLen(len(l.long) - 1)
		case errors.Is(err, bufio.ErrBufferFull):
			if len(l.long)+len(chunk) > l.max {
				return nil, errLineTooLong
			}
			l.long = append(l.long, chunk...)
		default: // end of output, with or without a last unterminated line
			l.long = append(l.long, chunk...)
			if len(l.long) == 0 {
				return nil, err
			}
			return l.long, l.checkLen(len(l.long))
		}
	}
}

func (l *lineReader) checkLen(n int) error {
	if n > l.max {
		return errLineTooLong
	}
	return nil
}

// release drops the memory kept for long lines once it is large.
func (l *lineReader) release() {
	if cap(l.long) > 64<<10 {
		l.long = nil
	}
}

// validText returns text as valid UTF-8, with each invalid byte replaced by
// U+FFFD, and whether anything was replaced. Valid text is returned as is.
func validText(text []byte, scratch []byte) ([]byte, []byte, bool) {
	if utf8.Valid(text) {
		return text, scratch, false
	}
	out := scratch[:0]
	for len(text) > 0 {
		r, size := utf8.DecodeRune(text)
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, text[:size]...)
		}
		text = text[size:]
	}
	return out, out, true
}
