package gateway

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/wsgate/wsgate/broadcast"
	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/observe"
	"github.com/wsgate/wsgate/internal/rawquery"
)

// Resume (broadcast mode, text only): a client that names the query
// parameter last_event_id follows positions. It gets every line as
// "id: EPOCH:SEQ\n\n" and the line, the tagged form of the stream's message,
// encoded once for every such client (broadcast.Message.Tagged), and first
// a greeting that says where it stands: "id: EPOCH:SEQ\nevent: joined\n\n"
// when what follows continues exactly from the position it gave (or, when it
// gave none, from just before the replay), "event: reset" when that position
// is no longer in the stream's history and the replay follows instead. The
// parameter is not part of the stream: it is dropped from the query string
// the stream is keyed by and the process sees. The positions are the bus's
// (broadcast.Link.Publish numbers the lines), so that a client resumes on
// any instance, and across a change of leader.

// resumeParam is the query parameter of a client that follows positions
// (nchan's name).
const resumeParam = "last_event_id"

// resumeCatchUp bounds how long a client waits for its instance to deliver
// a position of the stream's history that another instance delivered
// before it: the bus may still be bringing it here. Past it, the position
// counts as lost (a reset).
const resumeCatchUp = time.Second

// following is what a client that follows positions asked for.
type following struct {
	// at is the position of the last line it has; nil when it gave none
	// and starts with the replay.
	at *broadcast.Position
}

// checkResume reads last_event_id, under --broadcast: a malformed one, one
// given twice, or one in binary mode is refused with 400. The request goes
// on without it, so that the stream key and the process's environment do
// not name it.
func (g *Gateway) checkResume(q *request) *refusal {
	if !g.cfg.Broadcast {
		return nil
	}
	rest, values := rawquery.Without(q.r.URL.RawQuery, resumeParam)
	if len(values) == 0 {
		return nil
	}
	bad := func(reason, hint string) *refusal {
		return &refusal{status: http.StatusBadRequest, reason: reason, metric: observe.RefusedBadRequest,
			level: slog.LevelInfo, hint: hint}
	}
	switch {
	case g.cfg.Binary:
		return bad(resumeParam+" needs text mode: a binary stream (--binary) has no positions",
			"drop "+resumeParam+" from the URL, or serve text")
	case len(values) > 1:
		return bad(resumeParam+" given more than once", "give it once")
	}
	f := &following{}
	if values[0] != "" {
		at, err := broadcast.ParsePosition(values[0])
		if err != nil {
			return bad("malformed "+resumeParam+": "+err.Error(), "give the id of the last line received, or an empty value to join")
		}
		f.at = &at
	}
	q.follow = f
	q.r = rawquery.WithQuery(q.r, rest)
	return nil
}

// subscribe joins m to the local fan-out, with the registry's lock held:
// with the replay, or, for a client that follows positions, after the
// position it gave, with its greeting.
func (st *stream) subscribe(m *member) (*broadcast.Subscriber, bool) {
	if m.follow == nil {
		return st.fanout.Join(m, st.g.cfg.Replay > 0)
	}
	sub, j, ok := st.fanout.JoinAfter(m, m.follow.at)
	if ok {
		m.greeting = j.Greeting()
		if st.g.log.Enabled(st.g.ctx, slog.LevelDebug) {
			st.log.Debug("client follows positions", "asked", m.follow.at, "from", j.Before.String(), "continues", j.Continues)
		}
	}
	return sub, ok
}

// catchUp waits, resumeCatchUp at most, while the position f gives is of
// the stream's history but beyond what this instance has delivered. It is
// called before the member joins, and holds no lock.
func (st *stream) catchUp(f *following) {
	if f != nil && f.at != nil {
		st.fanout.AwaitReached(*f.at, resumeCatchUp, st.done)
	}
}

// tagMessage makes the tagged form of a message of the stream: one text
// frame of "id: EPOCH:SEQ\n\n" and the line, and under --compress its
// compressed frame too. The stream's messages in text mode are each one
// whole text frame.
func (st *stream) tagMessage(msg *broadcast.Message) *broadcast.Tagged {
	var room [64]byte
	prefix := broadcast.Position{Epoch: st.epoch, Seq: msg.Seq}.AppendText(append(room[:0], "id: "...))
	data, compressed, size := frames.PrefixedText(append(prefix, "\n\n"...), msg.Data[len(msg.Data)-msg.Size:], st.g.cfg.Compress)
	return &broadcast.Tagged{Data: data, Compressed: compressed, Size: size}
}

// form returns what msg is sent to the member as: the frame, compressed
// for a member that negotiated it when that is smaller, and the payload's
// size. A member that follows positions gets the tagged form. Small enough
// to be inlined in the writers' loop, for the members that do not.
func (m *member) form(msg *broadcast.Message, deflate bool) ([]byte, int) {
	if m.follow != nil {
		return m.taggedForm(msg, deflate)
	}
	if deflate && msg.Compressed != nil {
		return msg.Compressed, msg.Size
	}
	return msg.Data, msg.Size
}

// taggedForm is form for a member that follows positions.
func (m *member) taggedForm(msg *broadcast.Message, deflate bool) ([]byte, int) {
	t := msg.Tagged(m.bs.tagger)
	if deflate && t.Compressed != nil {
		return t.Compressed, t.Size
	}
	return t.Data, t.Size
}

// greet puts the greeting in the session's batch and sends it as far as
// the socket takes it at once; false when the pump is to send the rest.
// The writer at work calls it, before any line.
func (m *member) greet() bool {
	s := m.s
	s.out.Frame(frames.OpText, true, m.greeting, true)
	m.greeting = nil
	return s.wire.WriteNow(&s.out)
}
