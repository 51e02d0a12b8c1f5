// Package natsqueue is a [queue.Queue] on NATS JetStream, for outhook
// clients that run on several nodes or must not lose work when a process
// dies. It needs a NATS server with JetStream, version 2.9 or later, and
// uses nothing newer: no atomic batch publish, no per-message schedules.
//
// The queue holds jobs only. Subscriptions and deliveries live in the
// [github.com/outhook/outhook.Store] the application chooses: the MemoryStore (one process),
// or the SQLite and Postgres stores (packages sqlite and postgres). Nodes
// that share a stream must share their store too, since a delivery job
// handled on one node reads the delivery another node recorded.
//
// # Setup
//
// The application owns the connection, and with it the reconnection
// policy; the queue never closes it.
//
//	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
//	...
//	js, err := jetstream.New(nc)
//	...
//	q, err := natsqueue.New(js, &natsqueue.Config{Stream: "OUTHOOK"})
//	...
//	client, err := outhook.NewClient(&outhook.Config{Queue: q, Store: store, ...})
//	...
//	err = client.Start(ctx) // starts the queue: a clear error if NATS or JetStream is not there
//
// Every node of an application uses the same Config. [Queue.Start] (or
// the first [Queue.Enqueue]) creates or updates, for Config.Stream = S:
//
//   - stream S, work-queue retention, subjects "S.work.<token>": the jobs
//     of worker groups, removed when acknowledged;
//   - stream S_BCAST, limits retention, subjects "S.bcast.<token>": the
//     jobs of broadcast groups, kept for Config.BroadcastMaxAge;
//   - stream S_DEAD, limits retention, subjects "S.dead.<token>": dead
//     jobs, up to Config.DeadMaxJobs;
//   - key-value bucket S_LEDGER (stream KV_S_LEDGER): the run ledger.
//
// The token of a group is 32 hex digits of the SHA-256 of its name
// ([Queue.Subject]): outhook's group names hold '.', '/' and other
// characters that subjects cannot, so the name itself travels in a
// header.
//
// # Jobs on the wire
//
// A job is one message: its Payload is the body; ID, Group, Kind (percent-
// encoded), CreatedAt and RunAt (RFC 3339, nanoseconds) are headers, with
// "Outhook-Job: 1" marking the format; a job's Trace, when it has one, is
// the header Outhook-Trace, form-encoded ("traceparent=00-…&tracestate=…"). A message that does not decode (no
// such headers, a bad timestamp, a group that does not match its subject)
// is a poisoned message: it is dead-lettered at once with the reason as
// its error, and the other jobs are unaffected.
//
// # Worker groups and leases
//
// Each worker group has one durable pull consumer, "w_<token>", filtered
// on its subject and shared by every node, so a job goes to one handler at
// a time. A node never pulls more jobs than it has idle workers
// (Config.MaxWorkers per group), so a job never waits in a node's memory
// with its lease running. The lease is the consumer's AckWait: the group's
// GroupOptions.Timeout plus Config.AckMargin (Config.AckWait when the
// Timeout is zero), so that a handler that stays within its Timeout keeps
// its job; while a handler runs, the queue also tells the server every
// half lease that the job is in progress, so that one that overruns keeps
// it too. A job whose node dies runs again on another node once its lease
// has run out.
//
// # Attempts and errors: the run ledger
//
// JetStream counts deliveries (NumDelivered), not runs, and keeps no state
// of a message across its redeliveries. The queue needs both: Job.Attempt
// must grow by one per run, and Job.Errors must hold the error of every
// failed run, oldest first (the client counts consecutive store errors in
// it). Two designs were possible:
//
//   - re-publish a failed job with its errors and attempt in headers, then
//     acknowledge the old message; JetStream 2.9 cannot delay a message's
//     first delivery, so a delayed retry would be delivered at once and
//     handed back with NakWithDelay, a delivery that the next run cannot
//     tell from a crashed run, so Attempt would be off by one whenever a
//     node crashes or clocks disagree;
//   - keep the message, hand it back with NakWithDelay for every retry,
//     and record what JetStream does not know in a key-value bucket.
//
// The queue does the second. The ledger entry of a message (key "<token>.
// <stream sequence>") is written only when a run fails or a delivery is
// handed back unrun, and read only on a redelivery; a job that succeeds
// the first time costs no ledger access. An entry holds the errors, the
// next RunAt, and the number of runs as of one delivery, so that
//
//	Attempt = runs as of delivery k + (NumDelivered - k)
//
// counts every later delivery as a run, including runs that crashed their
// process, and never the deliveries the queue handed back without running
// the job: those that came before their RunAt, and those cut short by
// Stop. An entry is deleted when its job is done or dead (the bucket keeps
// a small delete marker until it expires), and expires after
// Config.LedgerTTL in any case, which must therefore outlast the longest
// delay between two runs of a job.
//
// The Result of a run is applied so:
//
//   - Done: the Next jobs are published, then the job is acknowledged.
//   - Retry: the error and RunAt are written to the ledger, then the job is
//     handed back with NakWithDelay until RunAt (Nak when RunAt is past).
//     JetStream keeps it pending until then (it counts as an
//     unacknowledged message of the group's consumer).
//   - Dead: the job, with its errors, is published to the dead-letter
//     stream, then acknowledged.
//   - A panic is a Retry with the error "panic: <value>"; an unknown
//     disposition, or a Done with an invalid Next job, is Dead with the
//     reason.
//   - A Retry with a context error, returned after Stop cancelled the
//     handlers, is handed back with Nak and recorded as no run at all.
//
// A job enqueued with a future RunAt is delivered at once (JetStream 2.9
// has no scheduled delivery), found early, and handed back with
// NakWithDelay; the ledger records that this delivery was no run, so the
// first run still has Attempt 1. RunAt is compared with the clock of the
// node that runs the job.
//
// Config.MaxDeliver bounds the runs of a job: a job delivered again after
// that many runs (runs that crashed or outlived their lease count) is
// dead-lettered without running, with an error that says so. The queue
// enforces it itself, and sets the consumers' own MaxDeliver to unlimited:
// a message that reaches a consumer's MaxDeliver stays in a work-queue
// stream, undelivered, with only an advisory to tell of it
// (https://docs.nats.io/reference/jetstream/advisory/max-deliver).
//
// # Duplicates
//
// A job with an ID is published with the message ID "<token>:<ID>", and
// the stream drops a second publish of it within Config.DuplicateWindow
// (five minutes by default;
// https://docs.nats.io/jetstream/model_deep_dive#message-deduplication).
// This is how a re-enqueue of a live (Group, ID), which the client makes
// when it routes an event a second time, is treated as done already. Two
// consequences: within the window, a finished job enqueued again is
// dropped too (the stream keeps message IDs, not job states); past the
// window, a job still live (a retry hours away) is not protected, which
// does not matter to the client, whose second routing of an event comes
// within one lease of the first. Jobs without an ID are never
// deduplicated. The server keeps every message ID for the window: at
// 1,000 jobs a second and five minutes, 300,000 IDs.
//
// # Next jobs: admitted together with completion
//
// JetStream 2.9 cannot publish several messages, let alone acknowledge
// one, atomically. The queue publishes a job's Next jobs, waits for the
// stream to store them, and only then acknowledges the job. If the process
// dies in between, the job runs again after its lease and produces Next
// jobs with the same IDs (the client derives delivery IDs from the event
// and the subscription), which the duplicate window drops: the Next jobs
// exist exactly once, and the job is done, as if both had happened
// together. This needs DuplicateWindow to outlast a lease plus a run;
// Subscribe logs a warning for a group where it does not. If the Next
// jobs cannot be published (NATS unreachable, or the stream full), the job
// is handed back and runs again a second later.
//
// For the same reason Enqueue of several jobs is all-or-none only in
// effect: when a publish fails, the error says how many were admitted, and
// the same call again within the window admits the rest.
//
// # Dead jobs
//
// Dead results, poisoned messages and jobs past MaxDeliver are published
// to the dead-letter stream, shared by every node, as JSON with their
// errors and the attempt of their last run, with a message ID made of the
// source message's stream and sequence (so a dead-lettering repeated after
// a crash is dropped). [Queue.Dead] reads them back most recent first.
// The stream keeps the newest Config.DeadMaxJobs, for Config.DeadMaxAge if
// set.
//
// # Broadcast groups
//
// A broadcast group (GroupOptions.Broadcast) has, on every node, an
// ephemeral consumer of that node's own on the broadcast stream, so every
// node gets every job. Guarantees, honestly:
//
//   - a node runs, at least once, every broadcast job published from the
//     moment its Queue was created (New) until it stops or dies, including
//     jobs it enqueued before Start;
//   - a node that is down, or not yet created, when a job is published
//     never runs it; a node that restarts does not catch up;
//   - a job older than Config.BroadcastMaxAge is gone;
//   - a node retries a failed broadcast job on its own, with its own
//     attempts; the errors of those attempts live in the node's memory,
//     as its consumer does (the server deletes the consumer some minutes
//     after the node stops pulling);
//   - a job goes to the broadcast stream only when its group is subscribed
//     as a broadcast group on the node that enqueues it: any other group
//     is taken for a work group.
//
// # Stopping
//
// [Queue.Stop] stops pulling, waits (bounded by its context) for the
// running handlers and applies their results, flushes the connection, and
// deletes the node's broadcast consumers. Jobs not yet run stay in the
// stream for another node or the next start. When the context ends first,
// Stop cancels the handlers' context, waits for them, and returns
// ctx.Err(). Enqueue then returns [queue.ErrClosed], except from inside a
// handler still running.
//
// # Stats
//
// [Queue.Stats] implements [queue.StatsReporter] from JetStream's own
// counts, with a handful of requests whatever the number of jobs: the
// work stream's per-group message counts, each group's consumer
// (NumPending is ready, NumAckPending running or delayed), and the
// dead-letter stream's message count. The server does not tell a delayed
// job from a running one, nor a job enqueued with a future RunAt from a
// ready one before a node first receives it: Running counts this node's
// runs only (other nodes' count as delayed), and a job due later counts
// as ready until first received. The oldest times come from the first
// undelivered and the first unacknowledged message of each group (a
// direct get each); see [Queue.Stats] for the details.
//
// # WaitIdle
//
// [Queue.WaitIdle] polls the server (Config.PollInterval) until the
// consumers of the groups subscribed on this node have no pending and no
// unacknowledged message (a delayed retry counts), no handler runs here,
// and no message was published to the work or broadcast stream while it
// looked. It is meant for tests: on a busy shared stream it may never see
// a quiet moment.
//
// # Failures and crash windows
//
// Delivery is at least once. The windows in which a job runs again, or
// loses something:
//
//   - a node dies while a handler runs: the job runs again on another node
//     when its lease runs out, and that run counts as an attempt;
//   - a node dies after a failed run but before the ledger write: the run
//     counts, its error is lost;
//   - a node dies after publishing Next jobs but before acknowledging the
//     job: see Next jobs above;
//   - an acknowledgement is lost (acknowledgements are not awaited, for
//     throughput): the job runs again after its lease;
//   - the connection drops: nats.go reconnects; acknowledgements made
//     meanwhile are buffered and sent on reconnection, handlers keep
//     running, and the queue renews its pull requests as soon as the
//     connection is back; nothing is lost;
//   - the NATS server itself crashes (rather than shutting down): it may
//     not have written the acknowledgements of the last moments, and
//     those jobs run again.
//
// Start fails, with an error that says so, when the connection is not
// connected or JetStream does not answer; it may be called again.
//
// # Limits
//
// Jobs waiting for a delayed retry are pending acknowledgements of their
// consumer, which the server tracks in memory and scans on its redelivery
// timer; the consumers set MaxAckPending to unlimited so that failing jobs
// cannot stall a group, which makes hundreds of thousands of delayed jobs
// per group the practical scale. Config.MaxJobs bounds the work stream,
// Enqueue failing with an error wrapping [queue.ErrQueueFull] when it is
// full (the default is no bound beyond the account's storage).
package natsqueue
