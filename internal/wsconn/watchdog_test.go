package wsconn

import (
	"net"
	"testing"
	"time"
)

// loopbackPair returns the two ends of a TCP connection on 127.0.0.1.
func loopbackPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return server, client
}

// A child that exits at once can have its close frame written, and the
// watchdog poked, before the session's goroutine has started the watchdog
// (session.run starts the pump first). That poke must not be lost: the
// close handshake would then wait for the first ping, an interval away.
func TestWatchdogPokedBeforeItStartsLooksWithinAClosePoll(t *testing.T) {
	t.Parallel()
	server, _ := loopbackPair(t)
	looked := make(chan struct{}, 1)
	d := &Watchdog{
		Wire:         NewWire(server, server, time.Hour),
		Interval:     time.Hour,
		WriteTimeout: time.Hour,
		Heard: func() time.Time { // every check asks, here
			select {
			case looked <- struct{}{}:
			default:
			}
			return time.Now()
		},
		CloseDelivered: func() {},
		Drop:           func(string) {},
	}
	d.Poke()
	d.Start()
	defer d.Stop()
	select {
	case <-looked:
	case <-time.After(100 * ClosePoll): // far more than one poll, far less than the interval
		t.Fatal("the watchdog did not look after a poke made before it started")
	}
}
