package gateway

import (
	"github.com/wsgate/wsgate/internal/readiness"
	"github.com/wsgate/wsgate/internal/wsconn"
)

// A broadcast member over plain TCP or a Unix socket is read without
// gorilla, and without a goroutine while it waits: an idle viewer of a
// dashboard should cost next to nothing, and a goroutine waiting in a read
// holds at least its 2 KiB stack, gorilla's reader a buffer besides. Its
// socket waits in the gateway's readiness set (Gateway.members) instead, and
// each time the client has sent something, a goroutine started for that
// (readTurn) reads what is there into a pooled buffer, decodes it with a
// frames.Decoder, which holds nothing between messages, writes the
// messages to the shared stdin, and arms the watch again or ends the
// session. A member under TLS is read on a goroutine of its own
// (copyInput): TLS keeps buffers of its own anyway.

// watchMember starts reading a member's client as it sends, through sr,
// and reports false when the gateway's readiness set cannot be had: then
// the member is to be read by a goroutine of its own (copyInput). Once it
// reports true, the session is the readiness set's: it ends, logs and
// leaves the gateway from the goroutine of its last read (memberInput.end).
func (s *session) watchMember(sr *wsconn.SocketReader) bool {
	set, err := s.gw.members.Get()
	if err != nil {
		s.log.Warn("broadcast member read by a goroutine of its own", "err", err)
		return false
	}
	in := &memberInput{clientInput: newClientInput(s), sr: sr}
	in.watch = set.Watch(sr.RawConn(), in.readable)
	s.reader.Store(in) // before Arm: a drop from now on fires the watch
	if err := in.watch.Arm(); err != nil {
		in.end(err)
	}
	return true
}

// readable is the watch's callback: the client has sent something, hung
// up or failed. It must not block the readiness set.
func (in *memberInput) readable() { go in.readTurn() }

// readTurn reads what the client has sent and writes its messages to the
// stdin, on a goroutine of its own, then waits for more with no goroutine,
// or ends the session.
func (in *memberInput) readTurn() {
	err := in.deliver(in.sr.Read(in.decode))
	if err == nil {
		if err = in.watch.Arm(); err == nil {
			return
		}
	}
	in.end(err)
}

// end ends a member whose client's side is over: err says how. What the
// client sent before that still reaches the stdin, if it can.
func (in *memberInput) end(err error) {
	s := in.s
	in.watch.Remove()
	s.clientEnded(in.clientInput.end(err))
	s.endMember()
	s.gw.sessionEnded(s)
}

// memberInput is the input of a member read through the readiness set.
type memberInput struct {
	clientInput
	sr    *wsconn.SocketReader
	watch *readiness.Watch
}
