package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/internal/testrun"
)

// departedBound is how soon the child of a client that left behind a full
// receive window must be gone: the stdin write notices the client within
// two of its one-second checks, then the stop sequence's SIGINT after
// 100 ms ends sleep; the rest is slack for a loaded machine.
const departedBound = 6 * time.Second

// A client floods a child that never reads its stdin, until its own writes
// block, and then closes its socket. Its FIN is queued behind the data that
// wsgate's full receive window holds back, so the socket wsgate would look
// at never shows it: the client's departure must be noticed another way,
// with pings on (the first one may be 30 s away) and off.
func TestDeparted_ClientBehindAFullReceiveWindowStopsItsChild(t *testing.T) {
	t.Parallel()
	for _, pings := range []string{"--pingms=30000", "--pingms=0"} {
		t.Run(strings.TrimPrefix(pings, "--"), func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, pings, writeScript(t, "echo $$; exec sleep 600"))
			conn := dial(t, g.url("/"))
			pgid := readPid(t, conn)
			sent := floodUntilBlocked(t, conn, 1<<20)
			conn.Close() // a FIN, queued behind what could not be sent
			left := time.Now()
			for len(testrun.GroupMembers(pgid)) > 0 && time.Since(left) < departedBound {
				time.Sleep(20 * time.Millisecond)
			}
			if members := testrun.GroupMembers(pgid); len(members) > 0 {
				t.Fatalf("the child's group %d still has %+v %v after its client left (after sending %d MiB); want it stopped",
					pgid, members, departedBound, sent>>20)
			}
			t.Logf("the child was gone %v after its client left (after sending %d MiB)", time.Since(left).Round(time.Millisecond), sent>>20)
			g.waitLog(2*time.Second, "session ended", nil)
		})
	}
}

// floodUntilBlocked sends messages of size bytes until a write has taken
// more than a second: every buffer on the way is full. It returns how many
// bytes were sent.
func floodUntilBlocked(t *testing.T, conn *websocket.Conn, size int) int {
	t.Helper()
	msg := []byte(strings.Repeat("f", size))
	sent := 0
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); sent += size {
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
			if !isTimeout(err) {
				t.Fatalf("flooding the child failed after %d bytes with %v, want the writes to block", sent, err)
			}
			return sent
		}
	}
	t.Fatalf("flooding a child that does not read: %d bytes sent in 60 s and still no write blocked", sent)
	return 0
}
