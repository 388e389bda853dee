package gateway

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wsgate/wsgate/broadcast"
	"github.com/wsgate/wsgate/internal/frames"
	"github.com/wsgate/wsgate/internal/observe"
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
	rest, values := withoutParam(q.r.URL.RawQuery, resumeParam)
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
	q.r = withQuery(q.r, rest)
	return nil
}

// withoutParam returns the raw query string without the parameters named
// name, the others kept in their order and as they were written, and the
// values of those it dropped, unescaped (a value that does not unescape is
// kept as written, and fails to parse).
func withoutParam(raw, name string) (string, []string) {
	if !strings.Contains(raw, name) && !strings.Contains(raw, "%") {
		return raw, nil // the common case: nothing to look at
	}
	var kept []string
	var values []string
	for _, part := range strings.Split(raw, "&") {
		key, value, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err != nil || k != name {
			kept = append(kept, part)
			continue
		}
		if v, err := url.QueryUnescape(value); err == nil {
			value = v
		}
		values = append(values, value)
	}
	if len(values) == 0 {
		return raw, nil
	}
	return strings.Join(kept, "&"), values
}

// withQuery returns a shallow copy of r whose URL has the raw query string
// raw.
func withQuery(r *http.Request, raw string) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	u := *r.URL
	u.RawQuery = raw
	r2.URL = &u
	return r2
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
		m.greeting = greeting(j)
		if st.g.log.Enabled(st.g.ctx, slog.LevelDebug) {
			st.log.Debug("client follows positions", "asked", positionText(m.follow.at), "from", j.Before.String(), "continues", j.Continues)
		}
	}
	return sub, ok
}

// positionText is a position for the log: "" for none.
func positionText(p *broadcast.Position) string {
	if p == nil {
		return ""
	}
	return p.String()
}

// greeting returns the first message of a client that follows positions:
// where it stands, and whether what follows continues from where it was.
func greeting(j broadcast.Joined) []byte {
	event := "reset"
	if j.Continues {
		event = "joined"
	}
	text := j.Before.AppendText([]byte("id: "))
	return append(append(append(text, "\nevent: "...), event...), "\n\n"...)
}

// catchUp waits, resumeCatchUp at most, while the position f gives is of
// the stream's history but beyond what this instance has delivered: the
// bus may still be bringing it. It is called before the member joins, and
// holds no lock.
func (st *stream) catchUp(f *following) {
	if f == nil || f.at == nil || st.fanout.Reached(*f.at) {
		return
	}
	deadline := time.NewTimer(resumeCatchUp)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !st.fanout.Reached(*f.at) {
		select {
		case <-st.done:
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// tagMessage makes the tagged form of a message of the stream: one text
// frame of "id: EPOCH:SEQ\n\n" and the line, and under --compress its
// compressed frame too. The stream's messages in text mode are each one
// whole text frame.
func (st *stream) tagMessage(msg *broadcast.Message) *broadcast.Tagged {
	line := msg.Data[len(msg.Data)-msg.Size:]
	// The frame is built after room for the longest header, which then
	// goes just before the text: one allocation.
	buf := make([]byte, frames.MaxHeader, frames.MaxHeader+len("id: :\n\n")+len(st.epoch)+20+len(line))
	buf = broadcast.Position{Epoch: st.epoch, Seq: msg.Seq}.AppendText(append(buf, "id: "...))
	buf = append(append(buf, "\n\n"...), line...)
	text := buf[frames.MaxHeader:]
	var header [frames.MaxHeader]byte
	h := frames.AppendHeader(header[:0], frames.OpText, true, len(text))
	start := frames.MaxHeader - len(h)
	copy(buf[start:], h)
	t := &broadcast.Tagged{Data: buf[start:], Size: len(text)}
	if st.g.cfg.Compress {
		if f := frames.AppendMessage(nil, frames.OpText, text, true); f[0]&frames.RSV1Bit != 0 {
			t.Compressed = f
		}
	}
	return t
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
