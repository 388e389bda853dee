package broadcast

import "context"

// A Bus shares streams among the instances of a program that name the same
// bus, so that a stream has one source in all of them: one instance at a
// time leads the stream (it runs what produces the messages and publishes
// them); every instance with subscribers relays what the leader publishes to
// its own Stream. What subscribers send goes from any instance to the
// leader. The Stream never knows which bus, if any, is behind it.
//
// A Bus's methods are safe for concurrent use.
type Bus interface {
	// Attach joins this instance to the stream key, as a party with
	// subscribers, and returns its link and where the stream stands.
	// Nothing is called on h before the link's Start.
	Attach(ctx context.Context, key string, h Handler) (Link, Attachment, error)
}

// Attachment is where a stream stands when an instance attaches to it.
type Attachment struct {
	// Replay holds the last messages published, oldest first (as many as
	// the bus keeps). Every message published after them is given to
	// Handler.Deliver, with no gap and no duplicate between the two.
	Replay []*Message
	// Lead says no instance led the stream and this one does now, at
	// once: it is to start the source, and Publish, without waiting for
	// Handler.Lead. Input sent from anywhere from now on reaches it.
	Lead bool
	// Epoch names the stream's history (position.go): the same on every
	// instance, and across changes of leader, until that history is lost.
	Epoch string
	// Seq is the number of the last message published (the last of
	// Replay); 0 when none has been.
	Seq uint64
}

// Link is one instance's attachment to a stream of a Bus.
//
// Start, SetPresent and Close do not block and call no Handler method, so
// they may be called with the caller's locks held.
type Link interface {
	// Start lets the link call its handler: what was published since
	// Attach is delivered, and the link may take the lead.
	Start()
	// Publish sends msgs, in order, to every other party: only while
	// leading. It numbers each message but a Last one (Message.Seq), after
	// the last published by any leader of the stream. A message marked Last
	// ends the stream for every party and gives up the lead; nothing may be
	// published after it. When it returns nil, the bus holds the messages
	// (its replay) and every party gets them: the leader may hand them to
	// its own subscribers, and not before, so that an instance that lost
	// the lead (it was frozen, or cut off) delivers nothing more. An error
	// means the messages may not have reached everyone: the link fails.
	Publish(msgs []*Message) error
	// Send queues p whole for the leader's Handler.Input, after what was
	// sent before. While the leader's queue is full (its source does not
	// take its input), Send waits, until ctx is done. What is sent while no
	// instance leads waits for the next leader.
	Send(ctx context.Context, p []byte) error
	// SetPresent says whether this instance has subscribers. The leader
	// keeps running while any instance has; Attach makes the instance
	// present.
	SetPresent(present bool)
	// Close detaches the instance from the stream, giving up the lead if it
	// holds it, without ending the stream for the others. It is safe to
	// call more than once, and from Handler methods.
	Close()
}

// Handler is what a Link tells of its stream. Its methods may be called
// from several goroutines at once, and until the link is closed.
type Handler interface {
	// Lead says this instance now leads the stream, taken over from
	// another: it is to start the source and Publish what it produces.
	Lead()
	// Deliver gives a message the leader published, on every party but
	// the leader. After a Last message, nothing more is delivered.
	Deliver(m *Message)
	// Input gives the leader what a subscriber on another instance sent,
	// whole, each sender's in its order, one at a time. It may block: what
	// is sent meanwhile waits in the bus's bounded queue, and past it the
	// senders wait.
	Input(p []byte)
	// Audience tells the leader how many instances have subscribers, its
	// own included, whenever that changes.
	Audience(instances int)
	// Fail says the link is broken: it may have missed messages, and it
	// leads no more. Nothing more is delivered.
	Fail(err error)
}
