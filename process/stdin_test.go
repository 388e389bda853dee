package process

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

// A writer's turn keeps what it writes whole; one waiting for the turn is
// asked, every check interval, whether to go on; a write the child does
// not take is asked too, and WriteUntil gives up when stopped.
func TestStdinTurnsAndBlockedWrites(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	in := NewStdin(w, 20*time.Millisecond)
	if err := in.Take(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	gaveUp := errors.New("gave up")
	asked := 0
	if err := in.Take(func() error { asked++; return gaveUp }); !errors.Is(err, gaveUp) || asked != 1 {
		t.Fatalf("a second writer's wait: %v after %d asks, want to give up at the first", err, asked)
	}
	if err := in.Write([]byte("whole\n"), func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	in.Release()
	got := make([]byte, 6)
	if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, []byte("whole\n")) {
		t.Fatalf("read %q, %v", got, err)
	}

	// Nothing reads the pipe now: a big write blocks and is asked.
	big := bytes.Repeat([]byte("x"), 1<<20)
	if err := in.Take(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := in.Write(big, func() error { return gaveUp }); !errors.Is(err, gaveUp) {
		t.Fatalf("a blocked write: %v, want the writer's answer", err)
	}
	in.Release()
	stop := make(chan struct{})
	close(stop)
	if err := in.WriteUntil(big, stop); !errors.Is(err, ErrStdinClosed) {
		t.Fatalf("WriteUntil stopped: %v, want ErrStdinClosed", err)
	}
	r.Close()
	if err := in.WriteLast([]byte("late\n"), time.Second); err == nil {
		t.Error("a write to a closed pipe succeeded")
	}
}
