package cdp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// ErrClosed is returned by calls made on, or pending when, a closed connection.
var ErrClosed = errors.New("cdp: connection closed")

// Error is an error answer from the browser to a protocol command.
type Error struct {
	Method  string // the command that failed, e.g. "Page.navigate"
	Code    int    // the browser's JSON-RPC error code
	Message string // the browser's description of the error
	Data    string // extra detail, often empty
}

// Error formats the browser's answer with the command that caused it.
func (e *Error) Error() string {
	s := fmt.Sprintf("cdp: %s: %s (%d)", e.Method, e.Message, e.Code)
	if e.Data != "" {
		s += ": " + e.Data
	}
	return s
}

// request is one command sent to the browser.
type request struct {
	ID     int64  `json:"id"`
	Method string `json:"method"`
	Params any    `json:"params,omitempty"`
}

// frame is any message from the browser: a response (ID set) or an event (Method set).
type frame struct {
	ID     int64           `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    string `json:"data"`
	} `json:"error"`
}

// conn is a protocol connection to one target. One goroutine (readLoop) is
// the only reader of ws; writes are serialised by writeMu. Everything else
// is guarded by mu, and call, waitEvent and close are safe to use
// concurrently.
type conn struct {
	ws      *websocket.Conn
	writeMu sync.Mutex

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan frame
	waiters map[*waiter]struct{}
	err     error // set once the read loop has ended

	done chan struct{} // closed when readLoop returns
}

// waiter receives the next event whose method matches.
type waiter struct {
	method string
	ch     chan json.RawMessage // buffered, capacity 1
}

// dialer connects to the browser directly: it is on loopback, never behind a proxy.
var dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second}

// dial opens a protocol connection to a target's WebSocket debugger URL.
func dial(ctx context.Context, url string) (*conn, error) {
	ws, _, err := dialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	c := &conn{
		ws:      ws,
		pending: make(map[int64]chan frame),
		waiters: make(map[*waiter]struct{}),
		done:    make(chan struct{}),
	}
	go c.readLoop()
	return c, nil
}

// readLoop is the only reader of the socket: it routes responses to their
// callers and events to their waiters until the socket fails or is closed.
func (c *conn) readLoop() {
	defer close(c.done)
	for {
		var f frame
		if err := c.ws.ReadJSON(&f); err != nil {
			c.fail(err)
			return
		}
		c.route(f)
	}
}

// route hands one frame to whoever is waiting for it; unwanted events are dropped.
func (c *conn) route(f frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.ID != 0 {
		if ch, ok := c.pending[f.ID]; ok {
			delete(c.pending, f.ID)
			ch <- f
		}
		return
	}
	for w := range c.waiters {
		if w.method == f.Method {
			delete(c.waiters, w)
			w.ch <- f.Params
		}
	}
}

// fail records why the read loop ended and releases every pending call.
func (c *conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = fmt.Errorf("%w: %v", ErrClosed, err)
	for id, ch := range c.pending {
		delete(c.pending, id)
		close(ch)
	}
}

// call sends one command and waits for its answer, unmarshalling the result
// into result unless result is nil. Errors are returned as they are: callers
// wrap them with what they were doing.
func (c *conn) call(ctx context.Context, method string, params, result any) error {
	id, ch, err := c.register()
	if err != nil {
		return err
	}
	if err := c.write(request{ID: id, Method: method, Params: params}); err != nil {
		c.unregister(id)
		return err
	}
	select {
	case f, ok := <-ch:
		if !ok {
			return c.closedErr()
		}
		return decodeResult(method, f, result)
	case <-ctx.Done():
		c.unregister(id)
		return ctx.Err()
	}
}

// register reserves a command id and the channel its answer will arrive on.
func (c *conn) register() (int64, chan frame, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, nil, c.err
	}
	c.nextID++
	ch := make(chan frame, 1)
	c.pending[c.nextID] = ch
	return c.nextID, ch, nil
}

// unregister forgets a command whose answer is no longer wanted.
func (c *conn) unregister(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, id)
}

// closedErr reports why the connection ended.
func (c *conn) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// write sends one command; gorilla/websocket allows only one writer at a time.
func (c *conn) write(r request) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.ws.WriteJSON(r)
}

// decodeResult turns a response frame into an error or a decoded result.
func decodeResult(method string, f frame, result any) error {
	if f.Error != nil {
		return &Error{Method: method, Code: f.Error.Code, Message: f.Error.Message, Data: f.Error.Data}
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(f.Result, result); err != nil {
		return fmt.Errorf("decode %s result: %w", method, err)
	}
	return nil
}

// subscribe registers interest in the next event named method. Subscribe
// before sending the command that causes the event, then call wait.
func (c *conn) subscribe(method string) *waiter {
	w := &waiter{method: method, ch: make(chan json.RawMessage, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiters[w] = struct{}{}
	return w
}

// wait blocks until w's event arrives, the connection ends or ctx is done.
func (c *conn) wait(ctx context.Context, w *waiter) (json.RawMessage, error) {
	defer c.unsubscribe(w)
	select {
	case params := <-w.ch:
		return params, nil
	case <-c.done:
		return nil, c.closedErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// unsubscribe forgets a waiter; it is harmless if the event already came.
func (c *conn) unsubscribe(w *waiter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.waiters, w)
}

// close shuts the socket and waits for the read loop to end. It is idempotent.
func (c *conn) close() error {
	err := c.ws.Close()
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		return nil // closed before: close is idempotent
	}
	return err
}
