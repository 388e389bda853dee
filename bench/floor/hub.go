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
	broadcast  chan *websocket.PreparedMessage
	register   chan *client
	unregister chan *client
	stdin      *lineWriter
	queue      int   // the size of each client's channel
	maxFrame   int64 // the read limit on clients; 0 for none
}

// startHub starts the shared child, the goroutine reading its output and
// the hub's run loop.
func startHub(argv []string, maxFrame int64, queue int) (*hub, error) {
	cmd, stdin, stdout, err := start(argv)
	if err != nil {
		return nil, err
	}
	h := &hub{
		clients:    map[*client]bool{},
		broadcast:  make(chan *websocket.PreparedMessage),
		register:   make(chan *client),
		unregister: make(chan *client),
		stdin:      &lineWriter{w: stdin},
		queue:      queue,
		maxFrame:   maxFrame,
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
		case msg, ok := <-lines:
			if !ok {
				lines = nil // the stream has ended: a nil channel never delivers
				for c := range h.clients {
					h.drop(c)
				}
				continue
			}
			for c := range h.clients {
				select {
				case c.send <- msg:
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
			// NewPreparedMessage copies the line into its frame.
			msg, perr := websocket.NewPreparedMessage(websocket.TextMessage, trimEOL(line))
			if perr != nil {
				break
			}
			h.broadcast <- msg
		}
		if err != nil {
			break
		}
	}
	close(h.broadcast)
	cmd.Wait()
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
