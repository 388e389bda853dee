// Package gateway is wsgate's WebSocket side: configuration, admission,
// sessions and broadcast streams. It admits each request (admission.go),
// runs one supervised child process per connection or one shared process
// per broadcast stream, turns the child's output into messages and the
// client's messages into its input, and shuts every session down cleanly.
// It reads no flags: the caller describes what to run in a Config.
//
// The layers below it, each a package of its own, with dependencies
// pointing one way (gateway -> them, never back): internal/httppolicy
// (paths, Host, origin, trusted proxies, subprotocols, handshake validity),
// internal/auth and internal/fairness (identity, rates and limits),
// internal/cgienv (the child's environment), internal/plainhttp (console,
// CGI, static files), internal/wsconn (the connection: wire, batch,
// watchdog, close record, socket reads, lifetime), internal/frames (frame
// encoding, compression, the one decoder of what clients send),
// internal/childout (what a child prints, as frames), internal/childin
// (what clients send, batched for a stdin), internal/rawquery (query
// parameters wsgate takes for itself), broadcast (the fan-out
// and the Bus: Local, or redisbus), process (starting, feeding, stopping and
// reaping children), internal/observe (what is told for metrics).
//
// # Goroutines: who starts each, who stops it
//
//	goroutine                  started by                   ends when                                    waited for by
//	net/http's conn handler    httpserver.Server.Serve      ServeHTTP returns, right after the upgrade   http.Server.Shutdown
//	serveSession               serveWebSocket               the client's side ended and the child        Shutdown (g.sessions)
//	                                                        is reaped (run), or the refusal is told
//	session.pumpOutput         session.run                  the child's process group is gone (Feed)     session.run (s.pumped)
//	memberInput.readTurn       the readiness set's callback one read turn is done: it re-arms the        the session's end (endMember)
//	                           (memberInput.readable)       watch, or ends the session
//	member.pump                member.Wake                  nothing more waits for the client            member.stop (m.writers)
//	source.pumpOutput          stream.leadLocked            the shared child's group is gone             Shutdown (g.sessions)
//	Shutdown's waiter          Gateway.Shutdown             every session has ended                      Shutdown, or its ctx
//
// Timers, no goroutine between their runs: the watchdog (wsconn.Watchdog,
// stopped when the session ends), the lifetime (wsconn.Lifetime, stopped in
// sessionEnded), a stream's linger (stopped when a member joins or the
// stream ends), and context.AfterFunc hooks that tell a session or a source
// that shutdown began (stopped when they end). The packages below own
// theirs: broadcast.Stream's delivery workers (deliver), broadcast.Local's
// audience teller (tellAudience), redisbus's link (read, feedInput) and bus
// (run, probe), process's reaper (reapOnSIGCHLD) and fork thread
// (runForks), internal/readiness's dispatcher: each starts and stops its
// own.
//
// # One message, each way, function by function
//
// A client's text message to the child's stdin (per-connection mode):
// serveSession -> session.run -> session.copyInput ->
// wsconn.SocketReader.ReadWhenReady (a read turn into a pooled buffer) ->
// clientInput.decode -> frames.Decoder.Feed -> clientInput.Message ->
// childin.Batch.Add (checks UTF-8, appends the line; a batch at its Limit
// is written first) -> clientInput.deliver at the end of the read turn ->
// childin.Batch.Flush -> session.writeStdin ->
// writeStdinParts -> process.Stdin.Take and Write -> the pipe. A broadcast
// member's goes the same way from memberInput.readTurn, and from
// session.writeStdin to stream.input: the leader's process.Stdin, or the
// bus (broadcast.Link.Send) for another instance's.
//
// A line the child prints, to the client (per-connection mode):
// process.Process.Feed (reads the pipe, on session.pumpOutput) ->
// childout's line sink (Write, endLine: valid UTF-8, within --maxlinesize)
// -> sessionOut.Frame -> wsconn.Batch.Frame or Message (frames.AppendHeader,
// frames.AppendMessage under compression) -> when the pipe holds nothing
// more, sessionOut.Flush -> wsconn.Wire.Write: a chunk at a time, control
// frames between chunks (WriteControls), the deadline from the client's
// progress (writeAll) -> the socket.
//
// In broadcast mode: source.pumpOutput -> childout -> source.Frame ->
// Gateway.sharedMessage (framed, and compressed, once for every member) ->
// broadcast.Stream.Publish, and at each Flush the bus (broadcast.Link.Publish;
// Local has no one else to tell) -> a delivery worker wakes the member
// (member.Wake) -> member.sendNow: broadcast.Subscriber.Take ->
// member.encode into the session's batch -> wsconn.Wire.WriteNow, or what
// does not go at once from member.pump -> member.drain -> wsconn.Wire.Write.
//
// Every close frame a session sends goes through session.close; the
// client's close is answered by session.answerClose.
package gateway
