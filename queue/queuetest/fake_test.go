package queuetest_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook/queue"
)

// fakeFlaws are deliberate bugs of the fake backend, each of which the
// suite must catch (see flaws_test.go).
type fakeFlaws struct {
	noRescue    bool // a crashed node's leases never run out
	shortLease  bool // leases last a quarter of GroupOptions.Timeout
	noDedup     bool // a live (Group, ID) enqueued again runs again
	forgetful   bool // stopping a node forgets every job's attempts and errors
	noBroadcast bool // a broadcast group's job runs on one node only
}

// fakeBackend is a multi-node, durable queue backend in miniature: a
// shared table of jobs with leases, which every fakeNode (the queue.Queue)
// polls, as nodes on one database would. It exists to run the suite's
// MultiNode, Durable and Crash paths without a database.
type fakeBackend struct {
	flaws fakeFlaws

	mu      sync.Mutex
	rows    map[rowKey]*fakeRow
	seq     uint64
	dead    []*queue.Job // oldest first
	subs    map[string]map[*fakeNode]queue.GroupOptions
	changed chan struct{} // closed and replaced when rows or subs change
}

// rowKey identifies a live job: (group, ID), plus the node a copy of a
// broadcast job is for.
type rowKey struct {
	group, id string
	node      *fakeNode
	seq       uint64 // non-zero only with the noDedup flaw
}

// fakeRow is a live job: pending, or leased by a node.
type fakeRow struct {
	job        queue.Job // Attempt counts the runs begun
	runAt      time.Time
	owner      *fakeNode
	leaseUntil time.Time
}

func newFakeBackend(flaws fakeFlaws) *fakeBackend {
	return &fakeBackend{
		flaws:   flaws,
		rows:    make(map[rowKey]*fakeRow),
		subs:    make(map[string]map[*fakeNode]queue.GroupOptions),
		changed: make(chan struct{}),
	}
}

// bump wakes the nodes waiting for a change. Call with mu held.
func (b *fakeBackend) bump() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// lease is how long a node holds a job it claimed.
func (b *fakeBackend) lease(timeout time.Duration) time.Duration {
	if timeout == 0 {
		timeout = time.Minute
	}
	switch {
	case b.flaws.noRescue:
		return 100 * 365 * 24 * time.Hour
	case b.flaws.shortLease:
		return timeout / 4
	}
	return timeout + timeout/2
}

// insert admits jobs; a live (Group, ID) is done already. Call with mu held.
func (b *fakeBackend) insert(jobs []*queue.Job, now time.Time) {
	for _, j := range jobs {
		row := queue.Job{ID: j.ID, Group: j.Group, Kind: j.Kind, Payload: slices.Clone(j.Payload), CreatedAt: j.CreatedAt, Trace: maps.Clone(j.Trace)}
		if row.CreatedAt.IsZero() {
			row.CreatedAt = now
		}
		runAt := j.RunAt
		if runAt.IsZero() {
			runAt = now
		}
		targets := []*fakeNode{nil}
		if !b.flaws.noBroadcast {
			var nodes []*fakeNode
			broadcast := false
			for n, opts := range b.subs[j.Group] {
				nodes = append(nodes, n)
				broadcast = broadcast || opts.Broadcast
			}
			if broadcast {
				targets = nodes
			}
		}
		for _, n := range targets {
			k := rowKey{group: j.Group, id: j.ID, node: n}
			if b.flaws.noDedup {
				b.seq++
				k.seq = b.seq
			}
			if _, live := b.rows[k]; live {
				continue
			}
			b.rows[k] = &fakeRow{job: row, runAt: runAt}
		}
	}
	b.bump()
}

// claim leases to n the earliest due job it serves. Without one, it
// returns how long until one may be due. Call with mu held.
func (b *fakeBackend) claim(n *fakeNode, now time.Time) (rowKey, *queue.Job, queue.Handler, time.Duration) {
	wait := time.Hour
	if n.closed {
		return rowKey{}, nil, nil, wait
	}
	var (
		best    *fakeRow
		bestKey rowKey
	)
	for k, r := range b.rows {
		if _, ok := n.handlers[k.group]; !ok || (k.node != nil && k.node != n) {
			continue
		}
		if r.owner != nil && now.Before(r.leaseUntil) {
			wait = min(wait, r.leaseUntil.Sub(now))
			continue
		}
		if r.runAt.After(now) {
			wait = min(wait, r.runAt.Sub(now))
			continue
		}
		if best == nil || r.runAt.Before(best.runAt) {
			best, bestKey = r, k
		}
	}
	if best == nil {
		return rowKey{}, nil, nil, wait
	}
	best.owner = n
	best.leaseUntil = now.Add(b.lease(n.opts[bestKey.group].Timeout))
	best.job.Attempt++
	j := best.job
	j.Payload = slices.Clone(j.Payload)
	j.Errors = slices.Clone(j.Errors)
	return bestKey, &j, n.handlers[bestKey.group], 0
}

// record adds a failed run's error to r. Call with mu held.
func record(r *fakeRow, err error, now time.Time) {
	if err != nil {
		r.job.Errors = append(r.job.Errors, queue.AttemptError{Attempt: r.job.Attempt, At: now, Error: err.Error()})
	}
}

// unsubscribe removes n's groups. Call with mu held.
func (b *fakeBackend) unsubscribe(n *fakeNode) {
	for g := range n.handlers {
		delete(b.subs[g], n)
	}
	b.bump()
}

// fakeNode is one node of a fakeBackend: a queue.Queue.
type fakeNode struct {
	b        *fakeBackend
	hctx     context.Context
	cancel   context.CancelFunc
	quit     chan struct{} // closed when the node stops taking work
	loopDone chan struct{} // closed when the loop has returned
	stopped  chan struct{} // closed when Stop has finished
	runs     sync.WaitGroup

	// Under b.mu.
	handlers map[string]queue.Handler
	opts     map[string]queue.GroupOptions
	started  bool
	closed   bool // stopped or crashed
	crashed  bool
}

var _ queue.Queue = (*fakeNode)(nil)

func (b *fakeBackend) newNode() *fakeNode {
	n := &fakeNode{
		b: b, quit: make(chan struct{}), loopDone: make(chan struct{}), stopped: make(chan struct{}),
		handlers: make(map[string]queue.Handler), opts: make(map[string]queue.GroupOptions),
	}
	n.hctx, n.cancel = context.WithCancel(context.Background())
	return n
}

func (n *fakeNode) Subscribe(group string, h queue.Handler, opts queue.GroupOptions) error {
	if group == "" || h == nil {
		return errors.New("fake: empty group or nil handler")
	}
	b := n.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if n.closed {
		return queue.ErrClosed
	}
	if _, ok := n.handlers[group]; ok {
		return fmt.Errorf("fake: group %q already subscribed", group)
	}
	n.handlers[group], n.opts[group] = h, opts
	if b.subs[group] == nil {
		b.subs[group] = make(map[*fakeNode]queue.GroupOptions)
	}
	b.subs[group][n] = opts
	b.bump()
	return nil
}

func (n *fakeNode) Enqueue(ctx context.Context, jobs ...*queue.Job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, j := range jobs {
		if j == nil || j.Group == "" {
			return fmt.Errorf("fake: job %d is nil or has no group", i)
		}
	}
	b := n.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if n.closed {
		return queue.ErrClosed
	}
	b.insert(jobs, time.Now())
	return nil
}

func (n *fakeNode) Start(context.Context) error {
	b := n.b
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case n.closed:
		return queue.ErrClosed
	case n.started:
		return errors.New("fake: already started")
	}
	n.started = true
	go n.loop()
	return nil
}

// loop claims due jobs and runs each in a goroutine, until quit.
func (n *fakeNode) loop() {
	defer close(n.loopDone)
	b := n.b
	for {
		select {
		case <-n.quit:
			return
		default:
		}
		b.mu.Lock()
		k, j, h, wait := b.claim(n, time.Now())
		changed := b.changed
		b.mu.Unlock()
		if h != nil {
			n.runs.Add(1)
			go n.run(k, j, h)
			continue
		}
		timer := time.NewTimer(wait)
		select {
		case <-n.quit:
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// run runs one claimed job and applies its result, unless the node has
// crashed or lost the lease meanwhile.
func (n *fakeNode) run(k rowKey, j *queue.Job, h queue.Handler) {
	defer n.runs.Done()
	res := h(n.hctx, j)
	now := time.Now()
	b := n.b
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.rows[k]
	if n.crashed || r == nil || r.owner != n {
		return
	}
	r.owner = nil
	defer b.bump()
	if n.hctx.Err() != nil { // cut short by Stop: as if it had not run
		r.job.Attempt--
		return
	}
	switch res.Disposition {
	case queue.Done:
		delete(b.rows, k)
		b.insert(res.Next, now)
	case queue.Retry:
		record(r, res.Err, now)
		r.runAt = res.RunAt
		if r.runAt.IsZero() {
			r.runAt = now
		}
	case queue.Snooze:
		r.job.Attempt--
		r.runAt = res.RunAt
		if r.runAt.IsZero() {
			r.runAt = now
		}
	default:
		record(r, res.Err, now)
		delete(b.rows, k)
		d := r.job
		b.dead = append(b.dead, &d)
	}
}

func (n *fakeNode) Stop(ctx context.Context) error {
	b := n.b
	b.mu.Lock()
	if n.closed {
		b.mu.Unlock()
		select {
		case <-n.stopped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	n.closed = true
	started := n.started
	b.unsubscribe(n)
	b.mu.Unlock()
	close(n.quit)
	if started {
		<-n.loopDone
	}
	done := make(chan struct{})
	go func() {
		n.runs.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		n.cancel()
		<-done
		err = ctx.Err()
	}
	n.cancel()
	if b.flaws.forgetful {
		b.mu.Lock()
		for _, r := range b.rows {
			r.job.Attempt, r.job.Errors = 0, nil
		}
		b.mu.Unlock()
	}
	close(n.stopped)
	return err
}

// crash makes n vanish as a killed process would: it claims nothing more
// and applies no result; its leases stay until they run out.
func (n *fakeNode) crash(t *testing.T) {
	b := n.b
	b.mu.Lock()
	n.closed, n.crashed = true, true
	started := n.started
	b.unsubscribe(n)
	b.mu.Unlock()
	close(n.quit)
	t.Cleanup(func() {
		// The process is gone; its goroutines must still end for goleak.
		n.cancel()
		if started {
			<-n.loopDone
		}
		n.runs.Wait()
	})
}

func (n *fakeNode) Dead(ctx context.Context, limit int) ([]*queue.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b := n.b
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*queue.Job
	for i := len(b.dead) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, b.dead[i])
	}
	return out, nil
}
