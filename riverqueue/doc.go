// Package riverqueue implements [queue.Queue] on River
// (github.com/riverqueue/river), the durable work queue shared by outhook's
// database backends: package postgres runs it on Postgres (pgx) and package
// sqlite on SQLite. Applications use those packages; this one holds what
// they share.
//
// # Jobs and queues
//
// Every outhook job is a River job of one kind, "outhook", whose args carry
// the job's Group, ID, Kind, Payload and CreatedAt, and its Trace (the trace
// context, under "trace", left out when the job has none). Each worker group is a
// River queue of its own, named from the group ("oh_" + a sanitized prefix
// of the group name + a hash of it, the same on every node), with its own
// workers ([Config.MaxWorkers] per node). Separate queues keep the groups
// fair to each other: a backlog of one integration event, or a slow one,
// cannot hold the workers of another, and delivery jobs never wait behind
// hook jobs, as they could in one shared FIFO. The price is one River
// producer per group on each node, which polls its queue every
// [Config.FetchPollInterval] when idle (Postgres's LISTEN/NOTIFY, or
// SQLite's polled notification table, wakes it at once otherwise).
//
// Within a group's queue, jobs admitted as a handler's Next jobs are fetched
// before jobs enqueued from outside (River priority 1 before 2), as the
// in-memory queue puts them at the head.
//
// # Deduplication
//
// An Enqueue of a (Group, ID) that is live is a no-op: jobs with an ID are
// River unique jobs, keyed by kind, queue, group and ID, among the live
// states (available, pending, scheduled, retryable, running). A finished
// (Group, ID), completed or dead, may be enqueued and run again. Jobs
// without an ID are never deduplicated.
//
// # Results, attempts and errors
//
// River counts attempts as queue.Job does: the fetch that hands a job to a
// handler increments it, so Job.Attempt is 1 on the first run and one more
// on each run after. The handler's Result is applied as follows:
//
//   - Done completes the job. With Next jobs, the worker inserts them and
//     completes the job in one transaction (as river.JobCompleteTx does), so
//     both happen or neither does; if that transaction fails, the run counts
//     as failed and the job runs again. The runs that finish together share
//     that transaction (group commit): one statement completes all their
//     jobs, another inserts all their Next jobs. A job whose lease ran out
//     meanwhile (its row no longer shows this run's attempt, running) is
//     left out, with its Next jobs.
//   - Retry records Result.Err in River's error list with the attempt number
//     (Job.Errors, oldest first) and makes the job run again at
//     Result.RunAt (at once when zero), through the worker's NextRetry. A
//     Retry with no error records nothing visible in Job.Errors.
//   - Dead cancels the job (river.JobCancel) with Result.Err recorded; it
//     never runs again and Dead lists it, most recent first.
//
// On Postgres, completing a job deletes it, unless [Config.KeepCompleted]:
// outhook has no use for completed jobs, and marking a job completed writes
// a new version of its row, with an entry in every one of River's indexes
// on it, where a deletion writes none. A job done without Next jobs is
// deleted before its run returns, in a transaction shared with the runs
// ending at the same time; River's completer, which comes after, then finds
// nothing to complete (if the deletion fails, River marks the job
// completed). On SQLite, whose rowids are reused, jobs are marked completed
// as River does, but in one statement for many (Backend.Finish).
//
// River's own retry policy never applies (the worker always gives the time)
// and River's MaxAttempts never decides: every job gets the largest value
// River's columns hold. A job or retry due more than River's scheduler
// interval (5 s) ahead waits as scheduled or retryable, and River's leader
// makes it available when due, so it may run up to that interval late,
// never early. One due sooner waits as available with its time (a job
// fetched early is snoozed until its RunAt, which River does not count as an
// attempt) and runs within a fetch poll of its time.
//
// A run cut short because the queue is stopping (Stop out of time, which
// calls River's StopAndCancel) and reported as a Retry carrying its
// context's error does not count: River sees a run cancelled by its stop,
// makes the job available again and restores its attempt number.
//
// A job whose args no longer decode, or lack a group, is poisoned: it is
// cancelled with the reason as its error, without running any handler, and
// listed by Dead. Other jobs are not affected.
//
// # Leases
//
// River marks a fetched job running with the time of the fetch; if the node
// dies, River's rescuer (on the elected leader, every 30 s) makes the job
// retryable again once it has been running longer than its timeout. The
// queue sets every job's timeout to its lease: the group's
// GroupOptions.Timeout (or [Config.DefaultTimeout] when zero) plus twice
// [Config.LeaseMargin]. The handler's context ends one margin earlier, the
// handler itself is expected to finish by Timeout, and the rescuer cannot
// take the job before the lease ends, so a job is never in flight twice
// unless a handler ignores its context for more than a margin. The rescuer
// consults each job's own lease, carried in its args, so that groups with
// long timeouts are safe even on a leader that does not run them.
//
// [Config.RescueInterval] adds a faster, per-node rescue for tests and for
// deployments that want crash recovery sooner than River's rescuer offers.
//
// # Group commit
//
// Enqueue calls made concurrently share transactions, and so do the
// completions of runs that end with Next jobs (see above): a single flusher
// writes the jobs of every call waiting with one River InsertMany, and
// calls that arrive meanwhile make up the next batch. Each caller still
// returns only once its own jobs are committed, with its own error: when a
// batch fails, each of its calls is retried alone. [Config.EnqueueWindow]
// adds a short linger to grow batches under light load;
// [Config.DisableGroupCommit] turns batching off. EnqueueTx writes in the
// caller's transaction instead (River's InsertManyTx) and is not batched.
//
// # Broadcast groups
//
// A broadcast group has one River queue per node ("ohb_" + group + node
// hashes), worked by that node alone. Each node refreshes its broadcast
// queues' updated_at every NodeTimeout/3; an Enqueue to a broadcast group
// lists River's queues and admits one copy of the job to every node whose
// queue is fresh, and always to itself. The copies are durable: a node that
// crashes and comes back under the same [Config.NodeID] within
// [Config.NodeTimeout] runs the copies addressed to it. What the design does
// not give: a node that joins after an event was enqueued never sees it (as
// with any publish/subscribe), a node that joins less than one refresh
// before may be missed, and the copies waiting for a node that stays away
// longer than NodeTimeout are deleted by the other nodes. Broadcast is
// therefore at-least-once for every node alive throughout, and best-effort
// otherwise, which suits its purpose (cache invalidation and the like).
//
// # Idleness, stopping
//
// WaitIdle polls River's job table until no outhook job is available,
// scheduled, retryable, pending or running, on any node (on Postgres, with a
// query that looks up each live state in River's fetch index, whatever the
// number of finished jobs in the table). Stop stops taking
// Enqueue calls, writes the ones already waiting, then stops River (which
// stops fetching and waits for the running handlers), bounded by its
// context; out of time, it cancels the handlers with River's StopAndCancel.
// Subscribe works before and after Start: River adds the group's queue at
// run time (Client.Queues().Add).
package riverqueue
