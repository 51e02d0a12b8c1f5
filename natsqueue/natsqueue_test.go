package natsqueue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/natsqueue"
	"github.com/outhook/outhook/queue"
)

// fakeJS is a JetStream without a connection, for the checks New makes
// before any request.
type fakeJS struct{ jetstream.JetStream }

func (fakeJS) Conn() *nats.Conn { return nil }

func TestNewValidatesConfig(t *testing.T) {
	_, err := natsqueue.New(nil, nil)
	require.ErrorContains(t, err, "nil JetStream")

	for _, tc := range []struct {
		name string
		cfg  natsqueue.Config
		want string
	}{
		{"stream with a dot", natsqueue.Config{Stream: "a.b"}, "Config.Stream"},
		{"stream with a space", natsqueue.Config{Stream: "a b"}, "Config.Stream"},
		{"negative replicas", natsqueue.Config{Replicas: -1}, "Config.Replicas"},
		{"too many replicas", natsqueue.Config{Replicas: 7}, "Config.Replicas"},
		{"negative workers", natsqueue.Config{MaxWorkers: -3}, "Config.MaxWorkers"},
		{"max deliver below -1", natsqueue.Config{MaxDeliver: -2}, "Config.MaxDeliver"},
		{"max jobs below -1", natsqueue.Config{MaxJobs: -2}, "Config.MaxJobs"},
		{"negative dead max jobs", natsqueue.Config{DeadMaxJobs: -1}, "Config.DeadMaxJobs"},
		{"negative ack wait", natsqueue.Config{AckWait: -time.Second}, "Config.AckWait"},
		{"tiny ack wait", natsqueue.Config{AckWait: time.Millisecond}, "Config.AckWait"},
		{"negative margin", natsqueue.Config{AckMargin: -time.Second}, "Config.AckMargin"},
		{"negative window", natsqueue.Config{DuplicateWindow: -time.Second}, "Config.DuplicateWindow"},
		{"window beyond broadcast age", natsqueue.Config{DuplicateWindow: 2 * time.Hour}, "Config.DuplicateWindow"},
		{"negative ledger ttl", natsqueue.Config{LedgerTTL: -time.Hour}, "Config.LedgerTTL"},
		{"negative poll", natsqueue.Config{PollInterval: -time.Second}, "Config.PollInterval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := natsqueue.New(fakeJS{}, &tc.cfg)
			require.ErrorContains(t, err, tc.want)
		})
	}
	// A valid config gets as far as the connection.
	_, err = natsqueue.New(fakeJS{}, nil)
	require.ErrorContains(t, err, "no connection")
}

func TestStartWithoutNATS(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		// Nothing listens on the port: the connection keeps trying.
		nc, err := nats.Connect("nats://127.0.0.1:1", nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
			nats.ReconnectWait(time.Hour))
		require.NoError(t, err)
		defer nc.Close()
		js, err := jetstream.New(nc)
		require.NoError(t, err)
		q, err := natsqueue.New(js, &natsqueue.Config{Stream: "UNREACHABLE"})
		require.NoError(t, err)
		err = q.Start(ctx(t))
		require.ErrorContains(t, err, "natsqueue: start: not connected to NATS")
		require.NoError(t, q.Stop(ctx(t)))
	})
	t.Run("closed", func(t *testing.T) {
		conn := connect(t)
		q, err := natsqueue.New(conn.js, &natsqueue.Config{Stream: newStream(t)})
		require.NoError(t, err)
		conn.nc.Close()
		require.ErrorContains(t, q.Start(ctx(t)), "not connected to NATS")
		require.ErrorContains(t, q.Enqueue(ctx(t), &queue.Job{ID: "x", Group: "g"}), "connection is closed")
		require.NoError(t, q.Stop(ctx(t)))
	})
}

func TestLifecycle(t *testing.T) {
	stream := newStream(t)
	q, _ := newQueue(t, natsqueue.Config{Stream: stream})
	h := func(context.Context, *queue.Job) queue.Result { return queue.Result{} }
	require.ErrorContains(t, q.Subscribe("", h, queue.GroupOptions{}), "empty group")
	require.ErrorContains(t, q.Subscribe("g", nil, queue.GroupOptions{}), "nil handler")
	require.ErrorContains(t, q.Subscribe("g", h, queue.GroupOptions{Timeout: -1}), "negative Timeout")
	require.NoError(t, q.Subscribe("g", h, queue.GroupOptions{}))
	require.ErrorContains(t, q.Subscribe("g", h, queue.GroupOptions{}), "already subscribed")

	require.ErrorContains(t, q.Enqueue(ctx(t), nil), "job 0 is nil")
	require.ErrorContains(t, q.Enqueue(ctx(t), &queue.Job{ID: "x"}), "has no group")
	require.NoError(t, q.Enqueue(ctx(t)), "an empty Enqueue")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, q.Enqueue(cancelled, &queue.Job{ID: "x", Group: "g"}), context.Canceled)

	start(t, q)
	require.ErrorContains(t, q.Start(ctx(t)), "already started")
	require.NoError(t, q.Stop(ctx(t)))
	require.NoError(t, q.Stop(ctx(t)), "a second Stop")
	require.ErrorIs(t, q.Start(ctx(t)), queue.ErrClosed)
	require.ErrorIs(t, q.Enqueue(ctx(t), &queue.Job{ID: "x", Group: "g"}), queue.ErrClosed)
	require.ErrorIs(t, q.Subscribe("h", h, queue.GroupOptions{}), queue.ErrClosed)

	// Stop before Start.
	q2, _ := newQueue(t, natsqueue.Config{Stream: stream})
	require.NoError(t, q2.Stop(ctx(t)))
	require.ErrorIs(t, q2.Start(ctx(t)), queue.ErrClosed)
}

// TestWindowWarning checks that Subscribe warns about a duplicate window
// too short for a group's lease and run.
func TestWindowWarning(t *testing.T) {
	logger, logs := testLogger()
	q, _ := newQueue(t, natsqueue.Config{Stream: newStream(t), DuplicateWindow: time.Second, Logger: logger})
	h := func(context.Context, *queue.Job) queue.Result { return queue.Result{} }
	require.NoError(t, q.Subscribe("short", h, queue.GroupOptions{Timeout: 100 * time.Millisecond}))
	require.NotContains(t, logs.String(), "duplicate window is shorter")
	require.NoError(t, q.Subscribe("long", h, queue.GroupOptions{Timeout: time.Second}))
	require.Contains(t, logs.String(), "duplicate window is shorter")
	require.Contains(t, logs.String(), "group=long")
}

// TestResultMapping checks what each Result does to a job.
func TestResultMapping(t *testing.T) {
	stream := newStream(t)
	logger, logs := testLogger()
	q, _ := newQueue(t, natsqueue.Config{Stream: stream, Logger: logger})
	// Group names hold characters subjects cannot.
	const g = "hook.with spaces/and*wild>cards"
	r := newRuns()
	require.NoError(t, q.Subscribe(g, func(_ context.Context, j *queue.Job) queue.Result {
		r.add(j)
		switch j.ID {
		case "retry-nil":
			if j.Attempt == 1 {
				return queue.Result{Disposition: queue.Retry}
			}
		case "retry-err":
			if j.Attempt < 3 {
				return queue.Result{Disposition: queue.Retry, Err: fmt.Errorf("boom %d", j.Attempt)}
			}
		case "dead":
			return queue.Result{Disposition: queue.Dead, Err: errors.New("fatal")}
		case "dead-nil":
			return queue.Result{Disposition: queue.Dead}
		case "unknown":
			return queue.Result{Disposition: 42, Err: errors.New("odd")}
		case "panic":
			if j.Attempt == 1 {
				panic("kaboom")
			}
		case "bad-next":
			return queue.Result{Next: []*queue.Job{{ID: "child"}}}
		}
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	ids := []string{"done", "retry-nil", "retry-err", "dead", "dead-nil", "unknown", "panic", "bad-next"}
	jobs := make([]*queue.Job, len(ids))
	for i, id := range ids {
		jobs[i] = &queue.Job{ID: id, Group: g, Kind: "k"}
	}
	require.NoError(t, q.Enqueue(ctx(t), jobs...))
	waitIdle(t, q)

	count := map[string]int{}
	for _, j := range r.all() {
		count[j.ID]++
	}
	require.Equal(t, map[string]int{"done": 1, "retry-nil": 2, "retry-err": 3, "dead": 1, "dead-nil": 1,
		"unknown": 1, "panic": 2, "bad-next": 1}, count)

	rn := r.of("retry-nil")
	require.Equal(t, 2, rn[1].Attempt)
	require.Empty(t, rn[1].Errors, "a Retry without an error records none")

	re := r.of("retry-err")
	for i, j := range re {
		require.Equal(t, i+1, j.Attempt)
		require.Len(t, j.Errors, i)
		for k, e := range j.Errors {
			require.Equal(t, k+1, e.Attempt)
			require.Equal(t, fmt.Sprintf("boom %d", k+1), e.Error)
		}
	}

	p := r.of("panic")[1]
	require.Len(t, p.Errors, 1)
	require.Equal(t, "panic: kaboom", p.Errors[0].Error)
	require.Contains(t, logs.String(), "handler panicked")

	dead := waitDead(t, q, "dead")
	require.Equal(t, 1, dead.Attempt)
	require.Equal(t, g, dead.Group)
	require.Equal(t, "k", dead.Kind)
	require.Len(t, dead.Errors, 1)
	require.Equal(t, "fatal", dead.Errors[0].Error)
	require.Empty(t, waitDead(t, q, "dead-nil").Errors)
	u := waitDead(t, q, "unknown")
	require.Len(t, u.Errors, 1)
	require.Equal(t, "natsqueue: unknown disposition 42: odd", u.Errors[0].Error)
	bn := waitDead(t, q, "bad-next")
	require.Len(t, bn.Errors, 1)
	require.Contains(t, bn.Errors[0].Error, `Next job 0 (id "child") has no group`)
}

// TestRoundTrip checks that every field of a job, however odd its text,
// reaches the handler unchanged.
func TestRoundTrip(t *testing.T) {
	stream := newStream(t)
	q, _ := newQueue(t, natsqueue.Config{Stream: stream})
	r := newRuns()
	const g = "g\r\nwith: a line break"
	require.NoError(t, q.Subscribe(g, func(_ context.Context, j *queue.Job) queue.Result {
		r.add(j)
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	created := time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.FixedZone("X", 3600))
	runAt := time.Now().Add(-time.Minute)
	in := &queue.Job{ID: " id with spaces %2F and\nnewline ", Group: g, Kind: " kind ", Payload: []byte{0, 1, 2, 0xff},
		CreatedAt: created, RunAt: runAt}
	require.NoError(t, q.Enqueue(ctx(t), in))
	out := r.next(t)
	require.Equal(t, in.ID, out.ID)
	require.Equal(t, in.Group, out.Group)
	require.Equal(t, in.Kind, out.Kind)
	require.Equal(t, in.Payload, out.Payload)
	require.True(t, out.CreatedAt.Equal(created), "CreatedAt %v, want %v", out.CreatedAt, created)
	require.True(t, out.RunAt.Equal(runAt), "RunAt %v, want %v", out.RunAt, runAt)
	require.Equal(t, 1, out.Attempt)
	require.Empty(t, out.Errors)

	// An empty payload and an empty ID are jobs too.
	require.NoError(t, q.Enqueue(ctx(t), &queue.Job{Group: g}))
	out = r.next(t)
	require.Empty(t, out.ID)
	require.Empty(t, out.Payload)
}

// TestAttemptsAndRunAt checks that deliveries the queue hands back
// without running the job (too early) do not count as attempts, that a
// retry waits for its RunAt, and that the ledger is cleared when the job
// is done.
func TestAttemptsAndRunAt(t *testing.T) {
	stream := newStream(t)
	q, conn := newQueue(t, natsqueue.Config{Stream: stream})
	r := newRuns()
	retryAt := make(chan time.Time, 10)
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		r.add(j)
		if j.Attempt < 3 {
			at := time.Now().Add(150 * time.Millisecond)
			retryAt <- at
			return queue.Result{Disposition: queue.Retry, RunAt: at, Err: fmt.Errorf("fail %d", j.Attempt)}
		}
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	first := time.Now().Add(300 * time.Millisecond)
	require.NoError(t, q.Enqueue(ctx(t), &queue.Job{ID: "j", Group: "g", RunAt: first}))
	waitIdle(t, q)

	runs := r.of("j")
	require.Len(t, runs, 3)
	require.False(t, runs[0].At.Before(first), "first run before the job's RunAt")
	for i, j := range runs {
		require.Equal(t, i+1, j.Attempt, "early deliveries handed back count as runs")
		require.Len(t, j.Errors, i)
		for k, e := range j.Errors {
			require.Equal(t, k+1, e.Attempt)
			require.Equal(t, fmt.Sprintf("fail %d", k+1), e.Error)
		}
		if i > 0 {
			at := <-retryAt
			require.False(t, j.At.Before(at), "run %d started before its retry RunAt", i+1)
		}
	}

	kv, err := conn.js.KeyValue(ctx(t), stream+"_LEDGER")
	require.NoError(t, err)
	lister, err := kv.ListKeys(ctx(t))
	require.NoError(t, err)
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	require.Empty(t, keys, "ledger entries left after the job was done")
}

// TestMaxDeliver checks that a job is dead-lettered, without running,
// when it comes back after MaxDeliver runs.
func TestMaxDeliver(t *testing.T) {
	stream := newStream(t)
	q, _ := newQueue(t, natsqueue.Config{Stream: stream, MaxDeliver: 2})
	var ran atomic.Int32
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		ran.Add(1)
		return queue.Result{Disposition: queue.Retry, Err: fmt.Errorf("fail %d", j.Attempt)}
	}, queue.GroupOptions{}))
	start(t, q)
	require.NoError(t, q.Enqueue(ctx(t), &queue.Job{ID: "j", Group: "g"}))
	d := waitDead(t, q, "j")
	waitIdle(t, q)
	require.Equal(t, int32(2), ran.Load())
	require.Equal(t, 2, d.Attempt)
	require.Len(t, d.Errors, 3)
	require.Equal(t, "fail 1", d.Errors[0].Error)
	require.Equal(t, "fail 2", d.Errors[1].Error)
	require.Contains(t, d.Errors[2].Error, "delivered again after 2 runs")
}

// TestSnoozeIsNotARun checks that snoozes do not count against
// MaxDeliver: a job that snoozes many more times than MaxDeliver allows
// runs, and completes, with its runs counted right.
func TestSnoozeIsNotARun(t *testing.T) {
	stream := newStream(t)
	q, _ := newQueue(t, natsqueue.Config{Stream: stream, MaxDeliver: 2})
	var ran atomic.Int32
	done := make(chan int, 1)
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		switch n := ran.Add(1); {
		case n == 1:
			return queue.Result{Disposition: queue.Retry, Err: errors.New("fail 1")}
		case n <= 11:
			return queue.Result{Disposition: queue.Snooze}
		}
		done <- j.Attempt
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	require.NoError(t, q.Enqueue(ctx(t), &queue.Job{ID: "j", Group: "g"}))
	select {
	case attempt := <-done:
		require.Equal(t, 2, attempt, "ten snoozes between two runs")
	case <-ctx(t).Done():
		t.Fatalf("the job did not complete after %d runs", ran.Load())
	}
	waitIdle(t, q)
	dead, err := q.Dead(ctx(t), 10)
	require.NoError(t, err)
	require.Empty(t, dead)
}

// TestDeadOrder checks that Dead lists jobs most recent first and honours
// its limit.
func TestDeadOrder(t *testing.T) {
	stream := newStream(t)
	q, _ := newQueue(t, natsqueue.Config{Stream: stream})
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		return queue.Result{Disposition: queue.Dead, Err: errors.New("no")}
	}, queue.GroupOptions{}))
	none, err := q.Dead(ctx(t), 10)
	require.NoError(t, err)
	require.Empty(t, none, "Dead before the streams exist")
	start(t, q)
	for i := range 5 {
		id := fmt.Sprint("d", i)
		require.NoError(t, q.Enqueue(ctx(t), &queue.Job{ID: id, Group: "g"}))
		waitDead(t, q, id)
	}
	jobs, err := q.Dead(ctx(t), 3)
	require.NoError(t, err)
	require.Len(t, jobs, 3)
	require.Equal(t, []string{"d4", "d3", "d2"}, []string{jobs[0].ID, jobs[1].ID, jobs[2].ID})
	jobs, err = q.Dead(ctx(t), -1)
	require.NoError(t, err)
	require.Empty(t, jobs)
}

// TestDedupe checks the duplicate window: a (Group, ID) published again
// within it is dropped, across groups IDs are independent, and jobs
// without an ID are never deduplicated.
func TestDedupe(t *testing.T) {
	stream := newStream(t)
	q, _ := newQueue(t, natsqueue.Config{Stream: stream})
	r := newRuns()
	for _, g := range []string{"a", "b"} {
		require.NoError(t, q.Subscribe(g, func(_ context.Context, j *queue.Job) queue.Result {
			r.add(j)
			return queue.Result{}
		}, queue.GroupOptions{}))
	}
	start(t, q)
	require.NoError(t, q.Enqueue(ctx(t),
		&queue.Job{ID: "x", Group: "a", Kind: "first"},
		&queue.Job{ID: "x", Group: "a", Kind: "second"},
		&queue.Job{ID: "x", Group: "b"},
		&queue.Job{Group: "a", Kind: "anonymous"},
		&queue.Job{Group: "a", Kind: "anonymous"},
	))
	waitIdle(t, q)
	// Within the window even a finished job is dropped: the stream keeps
	// message IDs, not job states.
	require.NoError(t, q.Enqueue(ctx(t), &queue.Job{ID: "x", Group: "a", Kind: "third"}))
	waitIdle(t, q)

	var got []string
	for _, j := range r.all() {
		got = append(got, j.Group+"/"+j.ID+"/"+j.Kind)
	}
	require.ElementsMatch(t, []string{"a/x/first", "b/x/", "a//anonymous", "a//anonymous"}, got)
}

// TestNextAcrossCrash checks how "Next jobs are admitted together with
// completion" is met: a node that published a job's Next jobs and died
// before acknowledging it leaves the job to run again, and the Next jobs
// of the second run, which have the same IDs, are dropped by the
// duplicate window.
func TestNextAcrossCrash(t *testing.T) {
	stream := newStream(t)
	cfg := natsqueue.Config{Stream: stream, AckMargin: 300 * time.Millisecond}
	qa, conn := newQueue(t, cfg)
	qb, _ := newQueue(t, cfg)
	opts := queue.GroupOptions{Timeout: 500 * time.Millisecond}
	children := newRuns()
	parents := newRuns()
	published := make(chan struct{})
	require.NoError(t, qa.Subscribe("parent", func(ctx context.Context, j *queue.Job) queue.Result {
		parents.add(j)
		// What apply does for a Done result with Next jobs, cut off
		// after the publish.
		if err := qa.Enqueue(ctx, &queue.Job{ID: "child-of-" + j.ID, Group: "child"}); err != nil {
			return queue.Result{Disposition: queue.Retry, Err: err}
		}
		close(published)
		<-ctx.Done()
		return queue.Result{Disposition: queue.Retry, Err: ctx.Err()}
	}, opts))
	next := func(_ context.Context, j *queue.Job) queue.Result {
		parents.add(j)
		return queue.Result{Next: []*queue.Job{{ID: "child-of-" + j.ID, Group: "child"}}}
	}
	require.NoError(t, qb.Subscribe("parent", next, opts))
	require.NoError(t, qb.Subscribe("child", func(_ context.Context, j *queue.Job) queue.Result {
		children.add(j)
		return queue.Result{}
	}, queue.GroupOptions{}))
	// Node a starts first, so that it takes the parent.
	start(t, qa)
	require.NoError(t, qa.Enqueue(ctx(t), &queue.Job{ID: "p", Group: "parent"}))
	<-published
	conn.crash()
	// The crashed node's handler returns once Stop cancels it; nothing it
	// does then reaches the server.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, qa.Stop(cancelled), context.Canceled)
	start(t, qb)
	children.next(t)
	waitIdle(t, qb)
	require.Len(t, parents.of("p"), 2, "the parent runs again after the crash")
	require.Equal(t, 2, parents.of("p")[1].Attempt)
	require.Len(t, children.all(), 1, "the child published twice ran twice")
}

// TestStopHandsBack checks that a run cut short by Stop is handed back
// without counting, and that jobs left in the stream wait for the next
// queue.
func TestStopHandsBack(t *testing.T) {
	stream := newStream(t)
	q1, _ := newQueue(t, natsqueue.Config{Stream: stream})
	started := make(chan struct{}, 1)
	require.NoError(t, q1.Subscribe("g", func(ctx context.Context, j *queue.Job) queue.Result {
		started <- struct{}{}
		<-ctx.Done()
		return queue.Result{Disposition: queue.Retry, Err: fmt.Errorf("cut short: %w", ctx.Err())}
	}, queue.GroupOptions{}))
	start(t, q1)
	require.NoError(t, q1.Enqueue(ctx(t), &queue.Job{ID: "held", Group: "g"}))
	<-started
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, q1.Stop(short), context.DeadlineExceeded)

	q2, _ := newQueue(t, natsqueue.Config{Stream: stream})
	r := newRuns()
	require.NoError(t, q2.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		r.add(j)
		return queue.Result{}
	}, queue.GroupOptions{}))
	// A job enqueued while no queue runs waits too.
	require.NoError(t, q2.Enqueue(ctx(t), &queue.Job{ID: "waiting", Group: "g"}))
	short2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	require.ErrorIs(t, q2.WaitIdle(short2), context.DeadlineExceeded, "WaitIdle before Start with jobs waiting")
	start(t, q2)
	waitIdle(t, q2)
	held := r.of("held")
	require.Len(t, held, 1)
	require.Equal(t, 1, held[0].Attempt, "the run cut short by Stop counted")
	require.Empty(t, held[0].Errors, "the run cut short by Stop was recorded as a failure")
	require.Len(t, r.of("waiting"), 1)
}

// TestWaitIdleDelayedRetry checks that a delayed retry keeps the queue
// busy.
func TestWaitIdleDelayedRetry(t *testing.T) {
	stream := newStream(t)
	q, _ := newQueue(t, natsqueue.Config{Stream: stream})
	var ran atomic.Int32
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		ran.Add(1)
		if j.Attempt == 1 {
			return queue.Result{Disposition: queue.Retry, RunAt: time.Now().Add(300 * time.Millisecond), Err: errors.New("later")}
		}
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	waitIdle(t, q)
	require.NoError(t, q.Enqueue(ctx(t), &queue.Job{ID: "j", Group: "g"}))
	waitIdle(t, q)
	require.Equal(t, int32(2), ran.Load(), "WaitIdle returned before the delayed retry ran")
	require.NoError(t, q.Stop(ctx(t)))
	require.NoError(t, q.WaitIdle(ctx(t)), "WaitIdle of an empty stopped queue")
}

// TestPoisonedMessage checks that messages that do not decode as jobs are
// dead-lettered with the reason, and that other jobs are unaffected.
func TestPoisonedMessage(t *testing.T) {
	stream := newStream(t)
	q, conn := newQueue(t, natsqueue.Config{Stream: stream})
	r := newRuns()
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		r.add(j)
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(t, q)
	subject := q.Subject("g")
	require.True(t, strings.HasPrefix(subject, stream+".work."), "subject %s", subject)
	require.NotEqual(t, subject, q.Subject("h"))

	pub := func(h nats.Header, body string) {
		_, err := conn.js.PublishMsg(ctx(t), &nats.Msg{Subject: subject, Header: h, Data: []byte(body)})
		require.NoError(t, err)
	}
	pub(nil, "raw bytes")
	pub(nats.Header{"Outhook-Job": {"1"}, "Outhook-Id": {"bad-time"}, "Outhook-Group": {"g"},
		"Outhook-Created-At": {"yesterday"}}, "p2")
	pub(nats.Header{"Outhook-Job": {"1"}, "Outhook-Id": {"wrong-group"}, "Outhook-Group": {"other"},
		"Outhook-Created-At": {time.Now().Format(time.RFC3339Nano)}}, "p3")
	pub(nats.Header{"Outhook-Job": {"9"}, "Outhook-Id": {"future"}}, "p4")
	require.NoError(t, q.Enqueue(ctx(t), &queue.Job{ID: "good", Group: "g"}))
	waitIdle(t, q)

	require.Len(t, r.all(), 1)
	require.Equal(t, "good", r.all()[0].ID)
	jobs, err := q.Dead(ctx(t), 10)
	require.NoError(t, err)
	require.Len(t, jobs, 4)
	reasons := map[string]string{}
	for _, j := range jobs {
		require.Equal(t, "g", j.Group)
		require.Len(t, j.Errors, 1)
		require.Contains(t, j.Errors[0].Error, "natsqueue: undecodable message")
		reasons[string(j.Payload)] = j.Errors[0].Error
	}
	require.Contains(t, reasons["raw bytes"], "not published by natsqueue")
	require.Contains(t, reasons["p2"], "Outhook-Created-At")
	require.Contains(t, reasons["p3"], `names group "other"`)
	require.Contains(t, reasons["p4"], "unknown format")
}

// TestBroadcast checks that every node runs a broadcast job, retries it
// on its own with its own attempts and errors, and that a node runs the
// broadcast jobs it enqueued before Start.
func TestBroadcast(t *testing.T) {
	stream := newStream(t)
	const g = "hook/broadcast.1"
	var nodes [2]*natsqueue.Queue
	var recs [2]*runs
	for i := range nodes {
		nodes[i], _ = newQueue(t, natsqueue.Config{Stream: stream})
		recs[i] = newRuns()
		rec := recs[i]
		require.NoError(t, nodes[i].Subscribe(g, func(_ context.Context, j *queue.Job) queue.Result {
			rec.add(j)
			if j.Attempt == 1 {
				return queue.Result{Disposition: queue.Retry, Err: errors.New("once more")}
			}
			return queue.Result{}
		}, queue.GroupOptions{Broadcast: true}))
	}
	require.NotEqual(t, nodes[0].Subject("work"), nodes[0].Subject(g))
	// Enqueued before any Start.
	require.NoError(t, nodes[0].Enqueue(ctx(t), &queue.Job{ID: "early", Group: g}))
	for _, q := range nodes {
		start(t, q)
	}
	require.NoError(t, nodes[1].Enqueue(ctx(t), &queue.Job{ID: "late", Group: g}))
	for _, q := range nodes {
		waitIdle(t, q)
	}
	for i, rec := range recs {
		for _, id := range []string{"early", "late"} {
			rs := rec.of(id)
			require.Len(t, rs, 2, "runs of %s on node %d", id, i)
			require.Equal(t, 2, rs[1].Attempt)
			require.Len(t, rs[1].Errors, 1)
			require.Equal(t, "once more", rs[1].Errors[0].Error)
		}
	}
}

// TestLargeEnqueue checks a call of more jobs than nats.go keeps
// outstanding asynchronous publishes.
func TestLargeEnqueue(t *testing.T) {
	stream := newStream(t)
	q, conn := newQueue(t, natsqueue.Config{Stream: stream})
	jobs := make([]*queue.Job, 5000)
	for i := range jobs {
		jobs[i] = &queue.Job{ID: fmt.Sprint(i), Group: "nobody"}
	}
	require.NoError(t, q.Enqueue(ctx(t), jobs...))
	s, err := conn.js.Stream(ctx(t), stream)
	require.NoError(t, err)
	require.Equal(t, uint64(len(jobs)), s.CachedInfo().State.Msgs)
}

// TestQueueFull checks MaxJobs.
func TestQueueFull(t *testing.T) {
	stream := newStream(t)
	q, _ := newQueue(t, natsqueue.Config{Stream: stream, MaxJobs: 2})
	require.NoError(t, q.Enqueue(ctx(t), &queue.Job{ID: "1", Group: "nobody"}))
	err := q.Enqueue(ctx(t), &queue.Job{ID: "2", Group: "nobody"}, &queue.Job{ID: "3", Group: "nobody"})
	require.ErrorIs(t, err, queue.ErrQueueFull)
	require.ErrorContains(t, err, "1 of 2 jobs admitted")
	require.ErrorIs(t, q.Enqueue(ctx(t), &queue.Job{ID: "4", Group: "nobody"}), queue.ErrQueueFull)
}

// TestKeepAlive checks that a handler running far longer than its
// group's lease keeps the job: no other node runs it meanwhile.
func TestKeepAlive(t *testing.T) {
	stream := newStream(t)
	cfg := natsqueue.Config{Stream: stream, AckMargin: 100 * time.Millisecond}
	var running, peak, runs atomic.Int32
	h := func(context.Context, *queue.Job) queue.Result {
		runs.Add(1)
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		// Four leases of 300ms: the work itself, not a wait for it.
		work := time.NewTimer(1200 * time.Millisecond)
		defer work.Stop()
		<-work.C
		return queue.Result{}
	}
	var nodes []*natsqueue.Queue
	for range 2 {
		q, _ := newQueue(t, cfg)
		require.NoError(t, q.Subscribe("slow", h, queue.GroupOptions{Timeout: 200 * time.Millisecond}))
		start(t, q)
		nodes = append(nodes, q)
	}
	require.NoError(t, nodes[0].Enqueue(ctx(t), &queue.Job{ID: "j", Group: "slow"}))
	for _, q := range nodes {
		waitIdle(t, q)
	}
	require.Equal(t, int32(1), runs.Load(), "the job ran again while its first run held it")
	require.Equal(t, int32(1), peak.Load())
}
