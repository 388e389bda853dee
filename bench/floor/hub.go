package main

import (
	"bufio"
	"io"
	"os/exec"
	"sync"

	"github.com/gorilla/websocket"
)

// hub is the floor of broadcast mode, after gorilla's examples/chat: one
// child shared by every client, started with the server. Its output is read
// line by line (readOutput), each line framed once as a PreparedMessage and
// handed to run, the one goroutine that owns the set of clients. run gives
// it to every client's buffered channel without waiting; a client whose
// channel is full is closed, so that nobody holds back the others. Each
// client's writePump writes what its channel brings; its readPump writes
// what the client sends to the child's stdin, a whole line at a time.
type hub struct {
	clients    map[*client]bool // run's own
	broadcast  chan outLine
	register   chan *client
	unregister chan *client
	stdin      *lineWriter
	queue      int   // the size of each client's channel
	maxFrame   int64 // the read limit on clients; 0 for none
	direct     bool  // the bound: run writes every line to every socket itself (bound.go)
}

// outLine is one line of the child's output as run hands it on: a
// PreparedMessage for the clients' write pumps, or, for the bound, the
// frame's bytes.
type outLine struct {
	msg   *websocket.PreparedMessage
	frame []byte
}

// startHub starts the shared child, the goroutine reading its output and
// the hub's run loop.
func startHub(argv []string, maxFrame int64, queue int, direct bool) (*hub, error) {
	cmd, stdin, stdout, err := start(argv)
	if err != nil {
		return nil, err
	}
	h := &hub{
		clients:    map[*client]bool{},
		broadcast:  make(chan outLine),
		register:   make(chan *client),
		unregister: make(chan *client),
		stdin:      &lineWriter{w: stdin},
		queue:      queue,
		maxFrame:   maxFrame,
		direct:     direct,
	}
	go h.run()
	go h.readOutput(stdout, cmd)
	return h, nil
}

// run owns the set of clients. When the child's output ends, every client's
// channel is closed (its writePump then sends a close frame), and so is that
// of every client that comes later.
func (h *hub) run() {
	lines := h.broadcast
	for {
		select {
		case c := <-h.register:
			if lines == nil {
				close(c.send)
				continue
			}
			h.clients[c] = true
		case c := <-h.unregister:
			h.drop(c)
		case line, ok := <-lines:
			if !ok {
				lines = nil // the stream has ended: a nil channel never delivers
				for c := range h.clients {
					h.drop(c)
				}
				continue
			}
			if h.direct {
				h.writeDirect(line.frame)
				continue
			}
			for c := range h.clients {
				select {
				case c.send <- line.msg:
				default: // full: the client is too slow
					h.drop(c)
				}
			}
		}
	}
}

// drop takes c out of the set and closes its channel, once.
func (h *hub) drop(c *client) {
	if h.clients[c] {
		delete(h.clients, c)
		close(c.send)
	}
}

// readOutput frames every line of the child's stdout once and hands it to
// run; at the end of the output it closes the broadcast channel and reaps
// the child.
func (h *hub) readOutput(stdout io.Reader, cmd *exec.Cmd) {
	r := bufio.NewReaderSize(stdout, 64<<10)
	var line []byte
	for {
		var err error
		line, err = readLine(r, line[:0])
		if len(line) > 0 || err == nil {
			out, ok := h.frame(trimEOL(line))
			if !ok {
				break
			}
			h.broadcast <- out
		}
		if err != nil {
			break
		}
	}
	close(h.broadcast)
	cmd.Wait()
}

// frame frames a line once for every client: as a PreparedMessage, which
// copies it, or for the bound as the bytes of a text frame.
func (h *hub) frame(line []byte) (outLine, bool) {
	if h.direct {
		return outLine{frame: textFrame(line)}, true
	}
	msg, err := websocket.NewPreparedMessage(websocket.TextMessage, line)
	return outLine{msg: msg}, err == nil
}

// lineWriter is the shared child's stdin: each message goes in whole, with
// its newline, under a lock, so that two clients' lines never interleave.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// writeLine writes msg and a newline in one write.
func (l *lineWriter) writeLine(msg []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.w.Write(append(msg, '\n'))
	return err
}
