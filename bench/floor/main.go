// Command floor is the benchmark's reference point: the least a correct
// one-process-per-connection WebSocket gateway has to do. It uses
// gorilla/websocket and os/exec and nothing else: no pings, no origin policy
// (every origin is allowed), no metrics, no logging.
//
//	floor [--port=N] [--address=A] [--maxframesize=BYTES] COMMAND [ARGS...]
//	floor --broadcast [--queue=N] [--direct] [...] COMMAND [ARGS...]
//
// With --broadcast it is instead the floor of broadcast mode: a hub in the
// style of gorilla's examples/chat (hub.go, client.go), with one child
// shared by every client. With --direct as well it is the bound of
// broadcast mode (bound.go): the hub writes every line to every socket
// itself, one write(2) each.
//
// Each text message from the client is written to the child's stdin followed
// by "\n"; each stdout line becomes one text message without its "\n" or
// "\r\n". When stdout closes the child is reaped and the client gets a close
// frame; when the client goes first the child's process group is killed and
// reaped. --maxforks and --loglevel are accepted and ignored so that the
// harness can start every server with the same flags.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// closeWait bounds how long the close frame write may take once the child
// has exited; a client that stopped reading must not pin the handler.
const closeWait = time.Second

func main() {
	port := flag.Int("port", 8080, "TCP port to listen on")
	address := flag.String("address", "127.0.0.1", "address to listen on")
	maxFrame := flag.Int64("maxframesize", 0, "largest client message in bytes; 0 means no limit")
	flag.Int("maxforks", 0, "accepted for compatibility, ignored")
	flag.String("loglevel", "", "accepted for compatibility, ignored")
	broadcast := flag.Bool("broadcast", false, "one child shared by every client (hub.go)")
	queue := flag.Int("queue", 1024, "with --broadcast: messages buffered per client; a client whose buffer is full is closed")
	direct := flag.Bool("direct", false, "with --broadcast: the bound, not the floor: every line written to every socket by the hub itself (bound.go)")
	flag.Parse()
	if flag.NArg() == 0 || *queue < 1 {
		fmt.Fprintln(os.Stderr, "floor: usage: floor [--port=N] [--address=A] [--broadcast [--queue=N] [--direct]] COMMAND [ARGS...]")
		os.Exit(2)
	}
	var h http.Handler = &handler{argv: flag.Args(), maxFrame: *maxFrame}
	if *broadcast {
		hub, err := startHub(flag.Args(), *maxFrame, *queue, *direct)
		if err != nil {
			log.Fatal(err)
		}
		h = hub
	}
	addr := net.JoinHostPort(*address, strconv.Itoa(*port))
	log.Fatal(http.ListenAndServe(addr, h))
}

// handler runs one child per upgraded connection.
type handler struct {
	argv     []string
	maxFrame int64
}

// upgrader allows every origin: the floor measures cost, not policy.
var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// ServeHTTP upgrades the request and owns the connection until the child is
// reaped. It is the only writer of data messages; copyInput is the only reader.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has already answered the client.
	}
	defer conn.Close()
	if h.maxFrame > 0 {
		conn.SetReadLimit(h.maxFrame)
	}
	cmd, stdin, stdout, err := start(h.argv)
	if err != nil {
		closeWith(conn, websocket.CloseInternalServerErr, err.Error())
		return
	}
	go copyInput(conn, stdin, cmd)
	copyErr := copyOutput(stdout, conn)
	waitErr := cmd.Wait()
	if copyErr != nil {
		return // The client is gone or broken; nobody to tell.
	}
	if waitErr != nil {
		closeWith(conn, websocket.CloseInternalServerErr, waitErr.Error())
		return
	}
	closeWith(conn, websocket.CloseNormalClosure, "exit status 0")
}

// start runs argv in its own process group so that killing the group also
// reaches anything the child started. The child's stderr is the floor's own,
// so that what a failing child says reaches whoever runs the floor.
func start(argv []string) (*exec.Cmd, io.WriteCloser, io.ReadCloser, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	return cmd, stdin, stdout, nil
}

// copyInput forwards client messages to stdin until the client goes, then
// closes stdin and kills the process group so that stdout reaches EOF and
// ServeHTTP can reap the child. Killing a child that already exited is harmless.
func copyInput(conn *websocket.Conn, stdin io.WriteCloser, cmd *exec.Cmd) {
	defer func() {
		stdin.Close()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}()
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		msg = append(msg, '\n')
		if _, err := stdin.Write(msg); err != nil {
			return
		}
	}
}

// copyOutput sends every stdout line as one text message. A last line
// without "\n" is still sent. It returns a non-nil error only when writing to
// the client failed.
func copyOutput(stdout io.Reader, conn *websocket.Conn) error {
	r := bufio.NewReaderSize(stdout, 64<<10)
	var line []byte
	for {
		var err error
		line, err = readLine(r, line[:0])
		if len(line) > 0 || err == nil {
			if werr := conn.WriteMessage(websocket.TextMessage, trimEOL(line)); werr != nil {
				io.Copy(io.Discard, r) // Let the child finish writing and exit.
				return werr
			}
		}
		if err != nil {
			return nil // EOF or a broken pipe: the child is done.
		}
	}
}

// readLine appends the next line, "\n" included, to buf. Lines have no length
// limit, hence ReadSlice plus append instead of ReadBytes' fresh allocation.
func readLine(r *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		chunk, err := r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, err
		}
	}
}

// trimEOL drops a trailing "\n" or "\r\n"; a lone "\r" at the end of an
// unterminated last line is data and stays.
func trimEOL(line []byte) []byte {
	if !bytes.HasSuffix(line, []byte("\n")) {
		return line
	}
	line = line[:len(line)-1]
	return bytes.TrimSuffix(line, []byte("\r"))
}

// closeWith sends a close frame; errors are ignored because the connection
// is closed right after either way.
func closeWith(conn *websocket.Conn, code int, reason string) {
	msg := websocket.FormatCloseMessage(code, reason)
	conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
}
