package frames

import (
	"errors"
	"strings"
)

// Extension offers (RFC 6455 section 9.1, RFC 7692 section 7): what a client
// proposes in Sec-WebSocket-Extensions, and which permessage-deflate offers
// the server can accept as it speaks the extension: each message compressed
// on its own, both ways.

// Param is one parameter of an extension offer.
type Param struct {
	Name  string
	Value string // unquoted; "" when HasValue is false
	// HasValue says the parameter had "=value".
	HasValue bool
}

// Offer is one extension a client offers, with its parameters in order.
type Offer struct {
	Name   string
	Params []Param
}

// ParseOffers parses the values of a client's Sec-WebSocket-Extensions
// headers, in order. Empty list elements are skipped, as RFC 9110 section
// 5.6.1 has a recipient do. A value that does not follow the grammar makes
// the whole header unusable: the error says where.
func ParseOffers(values []string) ([]Offer, error) {
	var offers []Offer
	for _, v := range values {
		s := offerScanner{rest: v}
		for {
			s.space()
			if s.eat(',') {
				continue
			}
			if s.rest == "" {
				break
			}
			o, err := s.offer()
			if err != nil {
				return nil, err
			}
			offers = append(offers, o)
			s.space()
			if s.rest != "" && !s.eat(',') {
				return nil, errors.New("extensions: unexpected " + quoteStart(s.rest) + " after an offer")
			}
		}
	}
	return offers, nil
}

// offerScanner reads one header value.
type offerScanner struct{ rest string }

// offer reads extension-token *( ";" extension-param ).
func (s *offerScanner) offer() (Offer, error) {
	name := s.token()
	if name == "" {
		return Offer{}, errors.New("extensions: expected an extension name at " + quoteStart(s.rest))
	}
	o := Offer{Name: name}
	for {
		s.space()
		if !s.eat(';') {
			return o, nil
		}
		s.space()
		p := Param{Name: s.token()}
		if p.Name == "" {
			return Offer{}, errors.New("extensions: expected a parameter name at " + quoteStart(s.rest))
		}
		s.space()
		if s.eat('=') {
			s.space()
			v, err := s.value()
			if err != nil {
				return Offer{}, err
			}
			p.Value, p.HasValue = v, true
		}
		o.Params = append(o.Params, p)
	}
}

// value reads a token or a quoted-string, which RFC 6455 section 9.1
// requires to hold a token once unquoted.
func (s *offerScanner) value() (string, error) {
	if !s.eat('"') {
		if v := s.token(); v != "" {
			return v, nil
		}
		return "", errors.New("extensions: expected a parameter value at " + quoteStart(s.rest))
	}
	var b strings.Builder
	for i := 0; i < len(s.rest); i++ {
		c := s.rest[i]
		switch {
		case c == '"':
			s.rest = s.rest[i+1:]
			v := b.String()
			if v == "" || !isToken(v) {
				return "", errors.New("extensions: quoted value " + quoteStart(v) + " is not a token")
			}
			return v, nil
		case c == '\\' && i+1 < len(s.rest):
			i++
			c = s.rest[i]
		}
		b.WriteByte(c)
	}
	return "", errors.New("extensions: unterminated quoted value")
}

// token reads a token (RFC 9110 section 5.6.2), "" if there is none.
func (s *offerScanner) token() string {
	n := 0
	for n < len(s.rest) && isTokenChar(s.rest[n]) {
		n++
	}
	t := s.rest[:n]
	s.rest = s.rest[n:]
	return t
}

// space skips optional white space.
func (s *offerScanner) space() { s.rest = strings.TrimLeft(s.rest, " \t") }

// eat consumes c if it comes next.
func (s *offerScanner) eat(c byte) bool {
	if s.rest != "" && s.rest[0] == c {
		s.rest = s.rest[1:]
		return true
	}
	return false
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}

// isTokenChar reports whether c is a tchar of RFC 9110 section 5.6.2.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// quoteStart quotes the first few bytes of s, for an error.
func quoteStart(s string) string {
	const most = 20
	if len(s) > most {
		s = s[:most] + "..."
	}
	return `"` + s + `"`
}

// DeflateOffered judges the permessage-deflate offers among the values of a
// client's Sec-WebSocket-Extensions headers. It reports whether one of them
// can be accepted with the answer "permessage-deflate;
// server_no_context_takeover; client_no_context_takeover"; if none can, err
// says why the first offer was declined (nil when none was made).
//
// RFC 7692 section 5 has the server decline an offer with a parameter it
// does not know, an invalid value, or a parameter given twice.
// server_max_window_bits is declined too: the server would have to bound
// its own LZ77 window, which compress/flate cannot do, and answer with the
// parameter. client_max_window_bits (alone or 8 to 15) is accepted and
// needs no answer: any window up to 32 KiB is decoded.
func DeflateOffered(values []string) (accept bool, err error) {
	offers, err := ParseOffers(values)
	if err != nil {
		return false, err
	}
	var first error
	for _, o := range offers {
		if o.Name != "permessage-deflate" {
			continue
		}
		err := checkDeflateOffer(o.Params)
		if err == nil {
			return true, nil
		}
		if first == nil {
			first = err
		}
	}
	return false, first
}

// checkDeflateOffer returns why a permessage-deflate offer with params
// cannot be accepted, or nil.
func checkDeflateOffer(params []Param) error {
	seen := make(map[string]bool, len(params))
	for _, p := range params {
		if seen[p.Name] {
			return errors.New("permessage-deflate: parameter " + p.Name + " given twice")
		}
		seen[p.Name] = true
		switch p.Name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if p.HasValue {
				return errors.New("permessage-deflate: " + p.Name + " takes no value")
			}
		case "client_max_window_bits":
			if p.HasValue && !validWindowBits(p.Value) {
				return errors.New("permessage-deflate: client_max_window_bits=" + p.Value + " is not 8 to 15")
			}
		case "server_max_window_bits":
			return errors.New("permessage-deflate: server_max_window_bits is not supported")
		default:
			return errors.New("permessage-deflate: unknown parameter " + p.Name)
		}
	}
	return nil
}

// validWindowBits reports whether v is a window size RFC 7692 section 7.1.2
// allows: a decimal integer from 8 to 15, without leading zeros.
func validWindowBits(v string) bool {
	switch v {
	case "8", "9", "10", "11", "12", "13", "14", "15":
		return true
	}
	return false
}
