package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/wsgate/wsgate/bench/internal/fanout"
)

// subscriber is one client of a fan-out scenario's shared producer. Its run
// goroutine reads the stream and checks every line: the ready line first,
// then lines 1 to plan.lines, each once, in order, byte for byte. It
// acknowledges every ackEvery lines and the last one, and records each
// line's latency when asked to.
//
// Concurrency: run is the only reader, and writes acks; send may be called
// from any goroutine (hello and go are sent from the scenario's). Fields
// other than c are read only after done is closed.
type subscriber struct {
	id     int
	c      *websocket.Conn
	plan   fanPlan
	resume bool        // follows positions: every message is tagged (untag)
	fail   func(error) // stops the whole run: called with the first failure
	pos    tagPosition // the position of the last message, when resume
	tagged []byte      // what it reads into, when resume

	writeMu sync.Mutex
	ready   chan struct{} // closed when the ready line has arrived
	done    chan struct{} // closed when run has returned

	got       int64           // the last line received in order
	finished  time.Time       // when the last line arrived
	latencies []time.Duration // from the line's stamp to its arrival, if recorded
	err       error
}

// newSubscriber wraps a connection; recordLatency keeps every line's latency.
func newSubscriber(id int, c *websocket.Conn, plan fanPlan, recordLatency bool, fail func(error)) *subscriber {
	sub := &subscriber{
		id:    id,
		c:     c,
		plan:  plan,
		fail:  fail,
		ready: make(chan struct{}),
		done:  make(chan struct{}),
	}
	if recordLatency {
		sub.latencies = make([]time.Duration, 0, plan.lines)
	}
	return sub
}

// send writes one message; it is safe alongside run's acks.
func (sub *subscriber) send(msg []byte) error {
	sub.writeMu.Lock()
	defer sub.writeMu.Unlock()
	return sub.c.WriteMessage(websocket.TextMessage, msg)
}

// run reads the stream to its last line. A failure, and where in the
// stream it came, is reported through fail so that the scenario stops at
// once.
func (sub *subscriber) run() {
	defer close(sub.done)
	if sub.err = sub.receive(); sub.err != nil {
		sub.fail(fmt.Errorf("subscriber %d, after line %d of %d: %w",
			sub.id, sub.got, sub.plan.lines, sub.err))
	}
}

// receive reads and checks the ready line, then every numbered line.
func (sub *subscriber) receive() error {
	buf := make([]byte, 0, 2*fanLineSize)
	if sub.resume {
		var err error
		sub.tagged = make([]byte, 0, 3*fanLineSize)
		if sub.tagged, err = readText(sub.c, sub.tagged); err != nil {
			return fmt.Errorf("waiting for the greeting: %w", err)
		}
		if sub.pos, err = greeted(sub.tagged); err != nil {
			return err
		}
	}
	buf, err := sub.next(buf)
	if err != nil {
		return fmt.Errorf("waiting for %q: %w", fanout.Ready, err)
	}
	if string(buf) != fanout.Ready {
		return fmt.Errorf("got %q, want %q", excerpt(buf, 0), fanout.Ready)
	}
	close(sub.ready)
	ack := make([]byte, 0, 32)
	for sub.got < sub.plan.lines {
		buf, err = sub.next(buf)
		arrived := time.Now()
		if err != nil {
			return err
		}
		seq, stamp, err := fanout.ParseLine(buf, fanLineSize)
		if err != nil {
			return err
		}
		if seq != sub.got+1 {
			return fmt.Errorf("got line %d next", seq)
		}
		sub.got = seq
		if sub.latencies != nil {
			sub.latencies = append(sub.latencies, time.Duration(arrived.UnixNano()-stamp))
		}
		if seq%sub.plan.ackEvery() == 0 || seq == sub.plan.lines {
			if err := sub.send(fanout.AppendAck(ack[:0], sub.id, seq)); err != nil {
				return fmt.Errorf("ack line %d: %w", seq, err)
			}
		}
	}
	sub.finished = time.Now()
	return nil
}

// next reads the next line: the message, into buf; or for a subscriber
// that follows positions, into its own buffer, the line after its
// position, which must follow the last one.
func (sub *subscriber) next(buf []byte) ([]byte, error) {
	if !sub.resume {
		return readText(sub.c, buf)
	}
	var err error
	if sub.tagged, err = readText(sub.c, sub.tagged); err != nil {
		return buf, err
	}
	line, epoch, seq, err := untag(sub.tagged)
	if err != nil {
		return buf, err
	}
	if string(epoch) != sub.pos.epoch || seq != sub.pos.seq+1 {
		return buf, fmt.Errorf("position %s:%d after %s:%d", epoch, seq, sub.pos.epoch, sub.pos.seq)
	}
	sub.pos.seq = seq
	return line, nil
}

// openSubscribers connects plan.subs subscribers, subscriber i to
// urls[i % len(urls)], with at most workers handshakes in flight; each says
// hello and starts reading. On error it closes whatever it had opened.
func openSubscribers(ctx context.Context, urls []string, plan fanPlan, workers int, recordLatency bool, fail func(error)) ([]*subscriber, error) {
	subs := make([]*subscriber, plan.subs)
	err := forEach(ctx, plan.subs, workers, func(i int) error {
		url := urls[i%len(urls)]
		if plan.resumes(i) {
			url += "?last_event_id="
		}
		c, err := dial(ctx, url)
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		sub := newSubscriber(i, c, plan, recordLatency, fail)
		sub.resume = plan.resumes(i)
		if err := sub.send(fanout.AppendHello(nil, i)); err != nil {
			c.Close()
			return fmt.Errorf("subscriber %d: hello: %w", i, err)
		}
		subs[i] = sub
		go sub.run()
		return nil
	})
	if err != nil {
		closeSubscribers(subs, workers)
		return nil, err
	}
	return subs, nil
}

// waitReady waits until every subscriber has the ready line: each has then
// joined the stream. It returns the run's first failure, if any.
func waitReady(ctx context.Context, subs []*subscriber) error {
	for i, sub := range subs {
		select {
		case <-sub.ready:
		case <-ctx.Done():
			return whyStopped(ctx, func() string {
				return fmt.Sprintf("subscriber %d of %d has no %q line", i, len(subs), fanout.Ready)
			})
		}
	}
	return nil
}

// waitDone waits until every subscriber has every line, and returns the
// run's first failure, if any. When the time limit comes first, it says how
// far the subscribers got.
func waitDone(ctx context.Context, subs []*subscriber) error {
	for _, sub := range subs {
		select {
		case <-sub.done:
			if sub.err != nil {
				return context.Cause(ctx) // fail has cancelled it with the whole story
			}
		case <-ctx.Done():
			return whyStopped(ctx, func() string { return progress(subs) })
		}
	}
	return nil
}

// whyStopped explains a wait that the run's context ended: a subscriber's
// failure tells its own story; the time limit, or an interrupt, is told with
// what more says about where the run was.
func whyStopped(ctx context.Context, more func() string) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, context.DeadlineExceeded) || errors.Is(cause, context.Canceled) {
		return fmt.Errorf("%w: %s", cause, more())
	}
	return cause
}

// progress says how many subscribers are short of the last line and where
// the slowest one is. The context is done: its connections are closed, so
// every reader returns soon.
func progress(subs []*subscriber) string {
	short, slowest := 0, int64(-1)
	for _, sub := range subs {
		<-sub.done
		if sub.got < sub.plan.lines {
			short++
			if slowest < 0 || sub.got < slowest {
				slowest = sub.got
			}
		}
	}
	if short == 0 {
		return "every subscriber had every line"
	}
	return fmt.Sprintf("%d of %d subscribers short of line %d, the slowest after line %d",
		short, len(subs), subs[0].plan.lines, slowest)
}

// closeSubscribers closes every opened connection, spread over workers
// goroutines because each close is a write, and waits for the readers to
// return.
func closeSubscribers(subs []*subscriber, workers int) {
	forEach(context.Background(), len(subs), workers, func(i int) error {
		if subs[i] != nil {
			closeNow(subs[i].c)
			<-subs[i].done
		}
		return nil
	})
}
