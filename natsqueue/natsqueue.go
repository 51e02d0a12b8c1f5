package natsqueue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outhook/outhook/queue"
)

var (
	_ queue.Queue = (*Queue)(nil)
	_ queue.Idler = (*Queue)(nil)
)

type state uint8

const (
	stateNew      state = iota // created, not started
	stateRunning               // started
	stateDraining              // Stop has begun
	stateStopped               // Stop has finished
)

// handlerKey is the context key whose value, on handler contexts, is the
// *Queue running the handler.
type handlerKey struct{}

// Queue is a [queue.Queue] on NATS JetStream. Create one with New. All
// methods are safe for concurrent use.
type Queue struct {
	js   jetstream.JetStream
	nc   *nats.Conn
	cfg  Config
	log  *slog.Logger
	node string    // random; names this queue's broadcast consumers
	born time.Time // broadcast consumers start at the jobs published since

	hctx      context.Context    // context of every handler run
	cancel    context.CancelFunc // cancels hctx
	fetchCtx  context.Context    // parent of every pull request's context
	stopFetch context.CancelFunc // cancels fetchCtx
	pulls     atomic.Pointer[epoch]
	quit      chan struct{} // closed when Stop begins
	stopped   chan struct{} // closed when Stop has finished

	startMu sync.Mutex // serializes Start and the consumer creation of Subscribe
	mu      sync.Mutex
	state   state
	groups  map[string]*group

	infraMu   sync.Mutex
	infraDone atomic.Bool
	ledger    ledger // of work jobs; set once infraDone

	fetchers sync.WaitGroup // fetch loops
	handlers sync.WaitGroup // handler runs; Add only by fetch loops
	running  atomic.Int64   // handler runs under way
	activity atomic.Uint64  // counts starts and ends of handler runs, for WaitIdle
}

// epoch is the context of the pull requests made since the connection
// last (re)connected: a server that restarted has forgotten the pull
// requests made before, which would otherwise wait out their expiry.
type epoch struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// newEpoch cancels the pull requests under way: they are made again at
// once.
func (q *Queue) newEpoch() {
	ctx, cancel := context.WithCancel(q.fetchCtx)
	if old := q.pulls.Swap(&epoch{ctx: ctx, cancel: cancel}); old != nil {
		old.cancel()
	}
}

// watch renews the pull requests whenever the connection comes back.
func (q *Queue) watch(ch chan nats.Status) {
	defer q.fetchers.Done()
	defer q.nc.RemoveStatusListener(ch)
	for {
		select {
		case <-q.quit:
			return
		case st, ok := <-ch:
			if !ok || st == nats.CLOSED {
				return
			}
			q.log.Info("natsqueue: reconnected to NATS; pulling jobs again")
			q.newEpoch()
		}
	}
}

// group is one subscribed worker group.
type group struct {
	name      string
	token     string
	handler   queue.Handler
	opts      queue.GroupOptions
	broadcast bool
	ackWait   time.Duration
	stream    string // the stream holding its jobs
	subject   string
	consumer  string // the consumer's name
	mem       *memLedger
	slots     chan struct{} // one token per handler running or reserved
	cons      jetstream.Consumer
	lastSeq   atomic.Uint64 // broadcast: the highest stream sequence received
	running   atomic.Int64  // handler runs of this group under way here, for Stats
}

// New returns a queue on js configured by cfg; a nil cfg selects all
// defaults. It makes no request: streams and consumers are created by
// Start (and the streams by the first Enqueue, if it comes first). It
// returns an error naming the field when cfg is invalid.
//
// New takes a [jetstream.JetStream] rather than a *nats.Conn so that the
// application chooses the JetStream domain or API prefix and the
// connection's reconnection policy; the queue uses its connection
// (js.Conn()) only to flush acknowledgements and to report its status. It
// never closes it.
func New(js jetstream.JetStream, cfg *Config) (*Queue, error) {
	if js == nil {
		return nil, errors.New("natsqueue: New: nil JetStream")
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	nc := js.Conn()
	if nc == nil {
		return nil, errors.New("natsqueue: New: the JetStream context has no connection")
	}
	var node [6]byte
	_, _ = rand.Read(node[:])
	q := &Queue{
		js:      js,
		nc:      nc,
		cfg:     c,
		log:     c.Logger,
		node:    hex.EncodeToString(node[:]),
		born:    time.Now(),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
		groups:  map[string]*group{},
	}
	base, cancel := context.WithCancel(context.Background())
	q.hctx = context.WithValue(base, handlerKey{}, q)
	q.cancel = cancel
	q.fetchCtx, q.stopFetch = context.WithCancel(context.Background())
	q.newEpoch()
	return q, nil
}

// Subject returns the subject the jobs of group are published on: a
// hash of the name, which may hold characters subjects cannot.
// Broadcast groups use it only when subscribed on this node; any other
// group is a work group.
func (q *Queue) Subject(group string) string {
	t := groupToken(group)
	if q.isBroadcast(group) {
		return bcastSubject(q.cfg.Stream, t)
	}
	return workSubject(q.cfg.Stream, t)
}

// Subscribe registers h as the handler of group. It may be called before
// or after Start; after Start it creates the group's consumer at once,
// bounded by Config.RequestTimeout, and returns the error if that fails.
// An empty group, a nil handler, a negative Timeout or a group already
// subscribed is an error; after Stop has begun it returns
// [queue.ErrClosed].
//
// A work group's lease (its consumer's AckWait) is opts.Timeout plus
// Config.AckMargin, or Config.AckWait when opts.Timeout is zero. A
// broadcast group (opts.Broadcast) gets a consumer of this node's own.
func (q *Queue) Subscribe(groupName string, h queue.Handler, opts queue.GroupOptions) error {
	if groupName == "" {
		return errors.New("natsqueue: subscribe: empty group")
	}
	if h == nil {
		return fmt.Errorf("natsqueue: subscribe %q: nil handler", groupName)
	}
	if opts.Timeout < 0 {
		return fmt.Errorf("natsqueue: subscribe %q: negative Timeout %s", groupName, opts.Timeout)
	}
	g := &group{
		name:      groupName,
		token:     groupToken(groupName),
		handler:   h,
		opts:      opts,
		broadcast: opts.Broadcast,
		ackWait:   q.cfg.AckWait,
		slots:     make(chan struct{}, q.cfg.MaxWorkers),
	}
	if opts.Timeout > 0 {
		g.ackWait = opts.Timeout + q.cfg.AckMargin
	}
	if g.broadcast {
		g.stream = bcastStreamName(q.cfg.Stream)
		g.subject = bcastSubject(q.cfg.Stream, g.token)
		g.consumer = "b_" + g.token + "_" + q.node
		g.mem = &memLedger{}
	} else {
		g.stream = q.cfg.Stream
		g.subject = workSubject(q.cfg.Stream, g.token)
		g.consumer = "w_" + g.token
	}
	q.startMu.Lock()
	defer q.startMu.Unlock()
	q.mu.Lock()
	st := q.state
	if st >= stateDraining {
		q.mu.Unlock()
		return queue.ErrClosed
	}
	if _, dup := q.groups[groupName]; dup {
		q.mu.Unlock()
		return fmt.Errorf("natsqueue: group %q already subscribed", groupName)
	}
	if st == stateNew {
		q.groups[groupName] = g
		q.mu.Unlock()
		q.checkWindow(g)
		return nil
	}
	q.mu.Unlock()

	// Running: create the consumer now. If Stop begins meanwhile, the
	// group is dropped below: its fetch loop would never be waited for.
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.RequestTimeout)
	defer cancel()
	if err := q.ensureConsumer(ctx, g); err != nil {
		return fmt.Errorf("natsqueue: subscribe %q: %w", groupName, err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.state >= stateDraining {
		q.deleteBroadcastConsumer(ctx, g)
		return queue.ErrClosed
	}
	q.groups[groupName] = g
	q.fetchers.Add(1)
	go q.fetchLoop(g)
	q.checkWindow(g)
	return nil
}

// checkWindow warns when the duplicate window cannot cover a second run of
// a job of g after a crash (see the package documentation, Next jobs).
func (q *Queue) checkWindow(g *group) {
	if g.ackWait+g.opts.Timeout > q.cfg.DuplicateWindow {
		q.log.Warn("natsqueue: the duplicate window is shorter than a lease plus a run: "+
			"the Next jobs of a job run again after a crash may be admitted twice",
			"group", g.name, "lease", g.ackWait, "timeout", g.opts.Timeout, "duplicate_window", q.cfg.DuplicateWindow)
	}
}

func (q *Queue) isBroadcast(groupName string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	g := q.groups[groupName]
	return g != nil && g.broadcast
}

// withTimeout bounds ctx by Config.RequestTimeout when it has no deadline.
func (q *Queue) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, q.cfg.RequestTimeout)
}

// ensureInfra creates or updates the streams and the bucket, once.
func (q *Queue) ensureInfra(ctx context.Context) error {
	if q.infraDone.Load() {
		return nil
	}
	q.infraMu.Lock()
	defer q.infraMu.Unlock()
	if q.infraDone.Load() {
		return nil
	}
	if q.nc.IsClosed() {
		return errors.New("natsqueue: the NATS connection is closed")
	}
	c := q.cfg
	deadDup := c.DuplicateWindow
	if c.DeadMaxAge > 0 && c.DeadMaxAge < deadDup {
		deadDup = c.DeadMaxAge
	}
	streams := []jetstream.StreamConfig{{
		// Work-queue retention: a message is removed when acknowledged,
		// and the consumers' filters may not overlap
		// (https://docs.nats.io/jetstream/model_deep_dive#stream-limits-retention-and-policy).
		Name:        c.Stream,
		Description: "outhook work jobs (natsqueue)",
		Subjects:    []string{c.Stream + ".work.*"},
		Retention:   jetstream.WorkQueuePolicy,
		MaxMsgs:     c.MaxJobs,
		MaxBytes:    -1,
		Discard:     jetstream.DiscardNew,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Duplicates:  c.DuplicateWindow,
		AllowDirect: true,
	}, {
		Name:        bcastStreamName(c.Stream),
		Description: "outhook broadcast jobs (natsqueue)",
		Subjects:    []string{c.Stream + ".bcast.*"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      c.BroadcastMaxAge,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Duplicates:  c.DuplicateWindow,
	}, {
		Name:        deadStreamName(c.Stream),
		Description: "outhook dead jobs (natsqueue)",
		Subjects:    []string{c.Stream + ".dead.*"},
		Retention:   jetstream.LimitsPolicy,
		MaxMsgs:     c.DeadMaxJobs,
		MaxAge:      c.DeadMaxAge,
		MaxBytes:    -1,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Duplicates:  deadDup,
		AllowDirect: true,
	}}
	for _, sc := range streams {
		if _, err := q.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("natsqueue: create or update stream %s: %w", sc.Name, err)
		}
	}
	kv, err := q.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      ledgerBucketName(c.Stream),
		Description: "outhook run ledger (natsqueue): errors and run counts of retried jobs",
		TTL:         c.LedgerTTL,
		Replicas:    c.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("natsqueue: create or update bucket %s: %w", ledgerBucketName(c.Stream), err)
	}
	q.ledger = kvLedger{kv: kv}
	q.infraDone.Store(true)
	return nil
}

// ensureConsumer creates or updates the consumer of g and stores it in
// g.cons.
func (q *Queue) ensureConsumer(ctx context.Context, g *group) error {
	if err := q.ensureInfra(ctx); err != nil {
		return err
	}
	desc := "outhook worker group " + g.name
	if len(desc) > 1024 {
		desc = desc[:1024]
	}
	cc := jetstream.ConsumerConfig{
		Description:   desc,
		FilterSubject: g.subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       g.ackWait,
		// The queue enforces Config.MaxDeliver itself: a message that
		// reaches the server's MaxDeliver stays in a work-queue stream
		// without being delivered again, and only an advisory tells of it
		// (https://docs.nats.io/reference/jetstream/advisory/max-deliver).
		MaxDeliver: -1,
		// Jobs waiting for a delayed retry count as pending
		// acknowledgements: a bound here would stall a group behind its
		// failing jobs.
		MaxAckPending: -1,
	}
	var (
		cons jetstream.Consumer
		err  error
	)
	if g.broadcast {
		// A named ephemeral consumer of this node's own: the server
		// deletes it once no pull request has come for InactiveThreshold
		// (https://docs.nats.io/nats-concepts/jetstream/consumers).
		cc.Name = g.consumer
		cc.InactiveThreshold = max(10*time.Minute, 4*g.ackWait)
		cc.Replicas = 1
		if last := g.lastSeq.Load(); last > 0 {
			cc.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
			cc.OptStartSeq = last + 1
		} else {
			born := q.born
			cc.DeliverPolicy = jetstream.DeliverByStartTimePolicy
			cc.OptStartTime = &born
		}
		cons, err = q.js.CreateConsumer(ctx, g.stream, cc)
		if errors.Is(err, jetstream.ErrConsumerExists) {
			cons, err = q.js.Consumer(ctx, g.stream, g.consumer)
		}
	} else {
		cc.Durable = g.consumer
		cc.Replicas = q.cfg.Replicas
		cc.DeliverPolicy = jetstream.DeliverAllPolicy
		cons, err = q.js.CreateOrUpdateConsumer(ctx, g.stream, cc)
	}
	if err != nil {
		return fmt.Errorf("natsqueue: create consumer %s for group %q: %w", g.consumer, g.name, err)
	}
	g.cons = cons
	return nil
}

// Start creates or updates the streams, the ledger bucket and the
// consumers of the groups subscribed so far, and starts pulling jobs. ctx
// bounds these requests (Config.RequestTimeout when it has no deadline);
// handlers do not run under it. Start returns a descriptive error, and
// may be called again, when NATS or JetStream cannot be reached; it
// returns an error when called twice and [queue.ErrClosed] after Stop has
// begun.
func (q *Queue) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.startMu.Lock()
	defer q.startMu.Unlock()
	q.mu.Lock()
	switch q.state {
	case stateRunning:
		q.mu.Unlock()
		return errors.New("natsqueue: already started")
	case stateDraining, stateStopped:
		q.mu.Unlock()
		return queue.ErrClosed
	}
	groups := make([]*group, 0, len(q.groups))
	for _, g := range q.groups {
		groups = append(groups, g)
	}
	q.mu.Unlock()

	if st := q.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("natsqueue: start: not connected to NATS at %s (connection %s)", q.nc.ConnectedUrlRedacted(), st)
	}
	ctx, cancel := q.withTimeout(ctx)
	defer cancel()
	if _, err := q.js.AccountInfo(ctx); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return fmt.Errorf("natsqueue: start: JetStream at %s did not answer: %w", q.nc.ConnectedUrlRedacted(), err)
		}
		return fmt.Errorf("natsqueue: start: JetStream is not available at %s: %w", q.nc.ConnectedUrlRedacted(), err)
	}
	if err := q.ensureInfra(ctx); err != nil {
		return fmt.Errorf("natsqueue: start: %w", err)
	}
	for _, g := range groups {
		if err := q.ensureConsumer(ctx, g); err != nil {
			for _, done := range groups {
				if done == g {
					break
				}
				q.deleteBroadcastConsumer(ctx, done)
			}
			return fmt.Errorf("natsqueue: start: %w", err)
		}
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	if q.state != stateNew {
		return queue.ErrClosed // Stop ran meanwhile
	}
	q.state = stateRunning
	q.fetchers.Add(1)
	go q.watch(q.nc.StatusChanged(nats.CONNECTED, nats.CLOSED))
	for _, g := range groups {
		q.fetchers.Add(1)
		go q.fetchLoop(g)
	}
	return nil
}

// Stop stops pulling jobs and waits, bounded by ctx, for the running
// handlers; the jobs not yet run stay in the stream for the next start or
// another node. Enqueue then returns [queue.ErrClosed], except from inside
// a handler still running. If ctx is done first, Stop cancels the
// handlers' context, waits for them to return, and returns ctx.Err(); a run
// the handler reports as cut short (Retry with a context error) is handed
// back without counting as a failed run. Stop flushes the connection,
// deletes this node's broadcast consumers, and leaves the connection open.
// It is idempotent: a later call waits for the first one to finish (or
// for its own ctx) and returns nil. Stop before Start is valid.
func (q *Queue) Stop(ctx context.Context) error {
	q.mu.Lock()
	switch q.state {
	case stateDraining, stateStopped:
		q.mu.Unlock()
		select {
		case <-q.stopped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	case stateNew:
		q.state = stateStopped
		q.mu.Unlock()
		close(q.quit)
		q.stopFetch()
		q.cancel()
		close(q.stopped)
		return nil
	}
	q.state = stateDraining
	groups := make([]*group, 0, len(q.groups))
	for _, g := range q.groups {
		groups = append(groups, g)
	}
	q.mu.Unlock()

	close(q.quit)
	q.stopFetch()
	idle := make(chan struct{})
	go func() {
		q.fetchers.Wait() // no handler is added after this
		q.handlers.Wait()
		close(idle)
	}()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		select {
		case <-idle:
		default:
			err = ctx.Err()
			q.cancel()
			<-idle
		}
	}
	q.cancel()

	if !q.nc.IsClosed() {
		// Bounded by ctx, or briefly when ctx is over: the last
		// acknowledgements are worth a moment.
		fctx, fcancel := q.withTimeout(ctx)
		if ctx.Err() != nil {
			fcancel()
			fctx, fcancel = context.WithTimeout(context.Background(), time.Second)
		}
		if ferr := q.nc.FlushWithContext(fctx); ferr != nil {
			q.log.Warn("natsqueue: stop: flush acknowledgements", "error", ferr)
		}
		for _, g := range groups {
			q.deleteBroadcastConsumer(fctx, g)
		}
		fcancel()
	}
	q.mu.Lock()
	q.state = stateStopped
	q.mu.Unlock()
	close(q.stopped)
	return err
}

// deleteBroadcastConsumer deletes g's consumer if it is this node's own.
func (q *Queue) deleteBroadcastConsumer(ctx context.Context, g *group) {
	if !g.broadcast || g.cons == nil || q.nc.IsClosed() {
		return
	}
	if err := q.js.DeleteConsumer(ctx, g.stream, g.consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		q.log.Warn("natsqueue: delete broadcast consumer", "group", g.name, "consumer", g.consumer, "error", err)
	}
}

// fromHandler reports whether ctx derives from a handler context of q.
func (q *Queue) fromHandler(ctx context.Context) bool {
	v, _ := ctx.Value(handlerKey{}).(*Queue)
	return v == q
}

// Enqueue publishes jobs, filling in CreatedAt when zero. It accepts jobs
// of any group, subscribed here or not: another node may serve it. A job
// whose group is subscribed on this node as a broadcast group goes to the
// broadcast stream; every other job is a work job.
//
// A job with an ID carries the message ID "<group token>:<ID>": JetStream
// drops a second publish of a (Group, ID) within Config.DuplicateWindow,
// and Enqueue reports it as admitted.
//
// JetStream (as of server 2.9) cannot publish several messages
// atomically, so a call of several jobs is all-or-none only in effect:
// when a publish fails, Enqueue returns an error that says how many jobs
// were admitted, and calling it again with the same jobs within the
// duplicate window admits the rest without duplicating the others. When
// ctx ends while acknowledgements are awaited, Enqueue returns ctx.Err()
// and some jobs may have been admitted.
//
// Errors: a nil job or a job without a group; [queue.ErrClosed] once Stop
// has begun (except from inside a running handler); an error wrapping
// [queue.ErrQueueFull] when the stream holds Config.MaxJobs jobs.
func (q *Queue) Enqueue(ctx context.Context, jobs ...*queue.Job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, j := range jobs {
		if j == nil {
			return fmt.Errorf("natsqueue: enqueue: job %d is nil", i)
		}
		if j.Group == "" {
			return fmt.Errorf("natsqueue: enqueue: job %d (id %q) has no group", i, j.ID)
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	q.mu.Lock()
	st := q.state
	q.mu.Unlock()
	if st == stateStopped || (st == stateDraining && !q.fromHandler(ctx)) {
		return queue.ErrClosed
	}
	ctx, cancel := q.withTimeout(ctx)
	defer cancel()
	if err := q.ensureInfra(ctx); err != nil {
		return fmt.Errorf("natsqueue: enqueue: %w", err)
	}
	if err := q.publish(ctx, jobs, time.Now()); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return ctxErr
		}
		return fmt.Errorf("natsqueue: enqueue: %w", err)
	}
	return nil
}

// publish publishes jobs and waits for the stream's acknowledgements.
func (q *Queue) publish(ctx context.Context, jobs []*queue.Job, now time.Time) error {
	msgs := make([]*nats.Msg, len(jobs))
	for i, j := range jobs {
		if j.CreatedAt.IsZero() {
			j.CreatedAt = now
		}
		t := groupToken(j.Group)
		subject := workSubject(q.cfg.Stream, t)
		if q.isBroadcast(j.Group) {
			subject = bcastSubject(q.cfg.Stream, t)
		}
		msgs[i] = encodeJob(subject, t, j)
	}
	if len(msgs) == 1 {
		if _, err := q.js.PublishMsg(ctx, msgs[0]); err != nil {
			return publishError(jobs[0], err)
		}
		return nil
	}
	// Asynchronous publishes, their acknowledgements awaited a chunk at a
	// time: nats.go stalls beyond a few thousand outstanding ones.
	var (
		firstErr error
		admitted int
		futures  = make([]jetstream.PubAckFuture, 0, min(len(msgs), publishChunk))
	)
	for start := 0; start < len(msgs) && firstErr == nil; start += publishChunk {
		end := min(start+publishChunk, len(msgs))
		futures = futures[:0]
		for i := start; i < end; i++ {
			f, err := q.js.PublishMsgAsync(msgs[i])
			if err != nil {
				firstErr = publishError(jobs[i], err)
				break
			}
			futures = append(futures, f)
		}
		for k, f := range futures {
			select {
			case <-f.Ok():
				admitted++
			case err := <-f.Err():
				if firstErr == nil {
					firstErr = publishError(jobs[start+k], err)
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if firstErr != nil {
		return fmt.Errorf("%d of %d jobs admitted (the same call again admits the rest): %w", admitted, len(jobs), firstErr)
	}
	return nil
}

// publishChunk is how many asynchronous publishes publish awaits at once.
const publishChunk = 1000

// publishError describes a failed publish of j.
func publishError(j *queue.Job, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == 10077 && strings.Contains(apiErr.Description, "maximum") {
		// JSStreamStoreFailedF: the stream's limits refuse the message
		// (discard policy "new").
		return fmt.Errorf("job %q of group %q: %w (%w)", j.ID, j.Group, queue.ErrQueueFull, err)
	}
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("job %q of group %q: no stream answered (was it deleted?): %w", j.ID, j.Group, err)
	}
	return fmt.Errorf("job %q of group %q: %w", j.ID, j.Group, err)
}

// Dead lists up to limit dead jobs, most recent first, from the dead-letter
// stream shared by every node; none when limit is not positive. Each job
// has the Attempt of its last run and the Errors of its failed runs; a
// message that could not be decoded as a job is listed with its body as
// Payload and the reason as its last error.
func (q *Queue) Dead(ctx context.Context, limit int) ([]*queue.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	ctx, cancel := q.withTimeout(ctx)
	defer cancel()
	s, err := q.js.Stream(ctx, deadStreamName(q.cfg.Stream))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("natsqueue: dead jobs: %w", err)
	}
	st := s.CachedInfo().State
	var out []*queue.Job
	for seq := st.LastSeq; seq >= st.FirstSeq && seq > 0 && len(out) < limit; seq-- {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // discarded meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("natsqueue: dead jobs: read message %d: %w", seq, err)
		}
		var r deadRecord
		if err := json.Unmarshal(m.Data, &r); err != nil {
			q.log.Warn("natsqueue: undecodable message in the dead-letter stream", "sequence", seq, "error", err)
			continue
		}
		out = append(out, r.job())
	}
	return out, nil
}

// WaitIdle blocks until no job of this queue's groups is ready, delayed or
// running, and returns nil, or until ctx is done, and returns ctx.Err().
// It asks the server, every Config.PollInterval, for the pending and
// unacknowledged messages of each subscribed group's consumer (a delayed
// retry is an unacknowledged message), and counts the handlers running
// here; one check passes only if no job was published to the queue's
// streams while it ran, so that a job handing work to another group
// cannot slip between two consumers. Jobs of groups not subscribed on
// this node are not waited for. After Stop it reports an error wrapping
// [queue.ErrClosed] if jobs are left.
func (q *Queue) WaitIdle(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		q.mu.Lock()
		st := q.state
		q.mu.Unlock()
		rctx, cancel := q.withTimeout(ctx)
		idle, left, err := q.idleOnce(rctx)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			q.log.Debug("natsqueue: wait idle: ask the server", "error", err)
		case idle:
			return nil
		case st == stateStopped:
			return fmt.Errorf("natsqueue: stopped with %d jobs left: %w", left, queue.ErrClosed)
		}
		t.Reset(q.cfg.PollInterval)
	}
}

// idleOnce checks once whether the queue is idle, and otherwise returns
// how many jobs it found.
func (q *Queue) idleOnce(ctx context.Context) (bool, int, error) {
	if n := q.running.Load(); n > 0 {
		return false, int(n), nil
	}
	q.mu.Lock()
	groups := make([]*group, 0, len(q.groups))
	for _, g := range q.groups {
		groups = append(groups, g)
	}
	q.mu.Unlock()
	act := q.activity.Load()
	before, err := q.streamSeqs(ctx)
	if err != nil {
		return false, 0, err
	}
	left := 0
	for _, g := range groups {
		n, err := q.pending(ctx, g)
		if err != nil {
			return false, 0, err
		}
		left += n
	}
	if left > 0 {
		return false, left, nil
	}
	after, err := q.streamSeqs(ctx)
	if err != nil {
		return false, 0, err
	}
	if before != after || q.running.Load() > 0 || q.activity.Load() != act {
		return false, 0, nil
	}
	return true, 0, nil
}

// streamSeqs returns the last sequences of the work and broadcast
// streams: they change with every publish.
func (q *Queue) streamSeqs(ctx context.Context) ([2]uint64, error) {
	var out [2]uint64
	for i, name := range []string{q.cfg.Stream, bcastStreamName(q.cfg.Stream)} {
		s, err := q.js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		out[i] = s.CachedInfo().State.LastSeq
	}
	return out, nil
}

// pending returns the jobs of g not yet acknowledged: delivered or not,
// delayed or not. Before g's consumer exists, it counts g's messages in
// the work stream.
func (q *Queue) pending(ctx context.Context, g *group) (int, error) {
	c, err := q.js.Consumer(ctx, g.stream, g.consumer)
	switch {
	case err == nil:
		ci := c.CachedInfo()
		return int(ci.NumPending) + ci.NumAckPending, nil
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return 0, nil
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return 0, err
	case g.broadcast:
		return 0, nil
	}
	s, err := q.js.Stream(ctx, g.stream)
	if err != nil {
		return 0, err
	}
	si, err := s.Info(ctx, jetstream.WithSubjectFilter(g.subject))
	if err != nil {
		return 0, err
	}
	return int(si.State.Subjects[g.subject]), nil
}
