// Package queuetest is the conformance suite of the queue contract
// (package queue): the properties every [queue.Queue] backend must have for
// the outhook client to deliver each job at least once, never twice at
// once, and never early. The in-memory queue runs it, and so does every
// durable backend.
//
// A backend runs the suite from its own tests, describing itself in a
// [Harness]:
//
//	func TestConformance(t *testing.T) {
//		queuetest.Run(t, queuetest.Harness{
//			NewQueue: func(t *testing.T) queue.Queue {
//				q, err := memqueue.New(nil)
//				require.NoError(t, err)
//				return q
//			},
//			UnknownGroupRefused: true,
//			LeaseTimeout:        100 * time.Millisecond,
//		})
//	}
//
// A multi-node backend returns, from every call of NewQueue, a new client
// of one shared database or stream (as separate processes would be), and
// sets MultiNode; one whose jobs survive a restart sets Durable; one that
// can simulate a killed process sets Crash.
//
// # What the suite checks
//
// Run runs one subtest per property, each on fresh worker groups:
//
//   - AtLeastOnce: a job whose handler returns Retry runs again; with Crash,
//     the job of a killed node is run by another node once its lease has
//     run out, not before.
//   - FanOut: a job ID enqueued to two groups is processed once by each.
//   - Exclusive: 300 jobs over the nodes of one group (3 with MultiNode)
//     are each processed exactly once; the split is logged.
//   - RunAt: a job never starts before its RunAt, nor a retry before the
//     RunAt of its Result.
//   - Attempts: Attempt is 1, 2, 3 over the runs of a job, Errors holds the
//     error of every failed run, oldest first, with its attempt number;
//     Kind, Payload, CreatedAt and Trace reach every run unchanged, a zero
//     CreatedAt is filled in, and a job enqueued without a Trace has a nil
//     one. With Durable the counts and the Trace survive a restart. A
//     Snooze is not a run: the job comes back no sooner than its RunAt
//     with the Attempt and Errors it had.
//   - Lease: a handler that runs for most of GroupOptions.Timeout is never
//     running twice at once for the same job, on any node, and its context
//     is not ended before that Timeout.
//   - Dead: a Dead result lists the job in Dead, most recent first, with
//     its errors, attempt count and Trace; it never runs again.
//   - Next: the Next jobs of a Done result run in their groups, once, with
//     their Trace.
//   - DuplicateEnqueue: with MultiNode or Durable, enqueueing a (Group, ID)
//     that is pending or running again is accepted and produces no second
//     run (see [queue.Job].ID).
//   - Stop: Stop waits for running handlers and applies their results;
//     Enqueue and Subscribe then fail with [queue.ErrClosed]; Stop with a
//     done context cancels the handlers' contexts and returns ctx.Err();
//     a second Stop is safe. With Durable, a run cut short by Stop runs
//     again on the next queue, its cancellation not counted as a failure.
//   - Broadcast: a broadcast group's job runs once on every node.
//   - WaitIdle: for a [queue.Idler], WaitIdle does not return while a
//     handler runs or a Next job or retry is still to run.
//   - UnknownGroup: with UnknownGroupRefused, a job for a group nobody
//     subscribed fails with [queue.ErrUnknownGroup] and nothing of the call
//     is admitted; without it, the job waits for a handler subscribed later.
//   - Subscribe: groups subscribed before and after Start both run; a
//     second Subscribe of a group fails.
//   - Stats: for a [queue.StatsReporter], jobs due now count as ready
//     before Start, jobs due later as delayed once a node has seen them, a
//     job its handler gave up on as dead, and finished jobs not at all.
//
// Subtests that need a flag the harness does not set are skipped with a
// message naming it: CrashedNode needs Crash; Attempts/Restart needs
// Durable; DuplicateEnqueue needs MultiNode or Durable; WaitIdle needs a
// queue.Idler.
//
// # Writing a harness
//
// NewQueue returns a new, unstarted queue. The suite subscribes its
// handlers, starts it, and stops it when the subtest ends unless it
// crashed it; anything else the queue needs torn down (a connection, a
// temporary file) the harness registers with t.Cleanup. With MultiNode
// unset, the suite never holds two live queues from NewQueue at once: a
// restart stops the first queue before making the second, so a single-
// process backend may reuse one file.
//
// Group names are fresh in every subtest and look like the client's
// ("queuetest.retry.1a2b3c4d": dot-separated lower-case letters, digits and
// dashes), so a shared database needs no cleaning between runs; job IDs are
// short ASCII strings. A durable backend keeps a few jobs of every run, in
// groups no later run uses: the dead jobs, and the probes the Stop subtest
// enqueues while Stop begins, which a stopping queue need not run. A
// queue.Idler's WaitIdle should therefore count only the groups its queue
// serves.
//
// Dead is called on a queue after its Stop has returned: the contract
// closes only Enqueue and Subscribe. The suite looks for its jobs among up
// to 1000 dead jobs, so other users of a shared database do not disturb it.
//
// # Timing
//
// The suite never sleeps to wait for work. It waits on its handlers'
// signals, on [queue.Idler].WaitIdle when every queue implements it, and
// otherwise on a barrier: a job due a little later in the same group,
// which the queue runs after the work due before it. Waits that must
// succeed fail after [Harness].WaitTimeout; a crashed node's job must run
// again within 5 × [Harness].LeaseTimeout. Times are compared with the
// process's clock; a backend whose store keeps its own clock or rounds
// timestamps declares the error it may make in [Harness].ClockTolerance.
package queuetest
