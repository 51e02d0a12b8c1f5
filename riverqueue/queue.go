package riverqueue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/outhook/outhook/internal/batch"
	"github.com/outhook/outhook/queue"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxWorkers         = 100
	DefaultFetchCooldown      = 10 * time.Millisecond
	DefaultFetchPollInterval  = time.Second
	DefaultEnqueueMaxBatch    = 1000
	DefaultEnqueueFlushers    = 1
	DefaultEnqueueWindow      = time.Millisecond
	DefaultTimeout            = time.Minute
	DefaultLeaseMargin        = 30 * time.Second
	DefaultNodeTimeout        = 30 * time.Second
	DefaultIdlePollInterval   = 25 * time.Millisecond
	DefaultDeadRetention      = 30 * 24 * time.Hour
	DefaultCompletedRetention = 10 * time.Minute
)

// queueListMax is how many River queues a broadcast lookup reads.
const queueListMax = 10_000

// ErrNotMigrated is wrapped by the error Start returns when River's tables
// are missing or older than this version of River needs.
var ErrNotMigrated = errors.New("riverqueue: River's tables are missing or out of date")

// Backend is what a database package (postgres, sqlite) gives New: River's
// driver for its database, how to run a transaction there, and the names
// that make errors point at the right functions.
type Backend[TTx any] struct {
	// Driver is River's driver, with its database pool.
	Driver riverdriver.Driver[TTx]
	// Begin, Commit and Rollback run the transactions in which a job's Next
	// jobs are admitted together with its completion.
	Begin    func(ctx context.Context) (TTx, error)
	Commit   func(ctx context.Context, tx TTx) error
	Rollback func(ctx context.Context, tx TTx) error
	// Finish, when set, finishes in tx the jobs of ids that are still
	// running with the attempt number of the same index in attempts, in
	// one statement, and returns the IDs it finished: it deletes them
	// (Postgres), or marks them completed (SQLite), as River's
	// JobCompleteTx would. With skipLocked, it leaves out the jobs whose
	// rows another transaction holds (River's completer, finishing them
	// too) rather than wait for them. River's tables are in schema when it
	// is not empty. The queue completes the jobs with Next jobs with it;
	// without it, with River's pilot (JobSetStateIfRunningMany), which on
	// some drivers runs a statement per job. It must not delete on a
	// database that reuses the IDs of deleted rows (SQLite's rowid): River's
	// completer still completes each job by ID after its run.
	Finish func(ctx context.Context, tx TTx, schema string, ids []int64, attempts []int, skipLocked bool) ([]int64, error)
	// FinishDeletes says that Finish deletes the jobs. The queue then uses
	// it only without Config.KeepCompleted, and also finishes the jobs done
	// without Next jobs with it, before their runs return, so that River's
	// completer does not mark them completed first.
	FinishDeletes bool
	// Live, when set, reports whether the River queues of names (in
	// schema, when it is not empty) hold a job that is available, pending,
	// retryable, running or scheduled: WaitIdle's poll. It should cost
	// little whatever the number of finished jobs in the table. When nil,
	// WaitIdle lists jobs with River's JobList.
	Live func(ctx context.Context, schema string, names []string) (bool, error)
	// Stats, when set, counts outhook's jobs (kind "outhook", in schema
	// when it is not empty) by River state, with the creation time of the
	// oldest in each: Queue.Stats. When nil, Queue.Stats is an error
	// matching errors.ErrUnsupported.
	Stats func(ctx context.Context, schema string) ([]StateCount, error)
	// Name prefixes errors, such as "postgres".
	Name string
	// Migrate names the function that creates River's tables, such as
	// "postgres.Migrate"; the error for missing tables tells to run it.
	Migrate string
}

// Config configures a Queue. The zero value of every field selects its
// documented default; negative durations and counts are invalid unless a
// field says otherwise.
type Config struct {
	// Logger receives the queue's logs and River's. Nil means
	// slog.Default().
	Logger *slog.Logger

	// NodeID names this process among the nodes sharing the database. It
	// must be unique among running nodes; reusing it after a restart lets
	// the node pick up the broadcast jobs addressed to it while it was
	// away (see the package documentation). Empty means a random ID.
	NodeID string

	// MaxWorkers is how many jobs of one worker group this node runs at
	// once (each group is a River queue with its own workers). Default 100,
	// River's own default. A run spends most of its time waiting, for the
	// database (the queue's and the store's group commits) or for a
	// delivery's destination, so a group's throughput is about MaxWorkers
	// over a run's duration; but the delivery group's MaxWorkers is also
	// how many requests a node may have in flight to one slow receiver.
	// On the 2-core benchmark machine, 500 did not deliver faster (the
	// database's CPU is the bound there; see BENCHMARKS.md).
	MaxWorkers int
	// GroupMaxWorkers overrides MaxWorkers for the groups it names. The
	// outhook client's delivery attempts run in the group
	// "outhook.deliveries".
	GroupMaxWorkers map[string]int
	// FetchCooldown is the shortest time between two fetches of one
	// group's queue (River's FetchCooldown), which bounds the throughput of
	// a group at MaxWorkers jobs per FetchCooldown on one node. Default
	// 10 ms.
	FetchCooldown time.Duration
	// FetchPollInterval is how often an idle group's queue is polled for
	// work that arrived without a notification, such as a retry due now
	// (River's FetchPollInterval). Default 1 s.
	FetchPollInterval time.Duration

	// EnqueueWindow bounds how long the group commit of Enqueue lingers
	// to gather concurrent calls into one transaction. It lingers only
	// under load (the previous transaction held several calls), and only
	// until as many calls wait again; a lone caller never waits. Default
	// 1 ms; -1 never lingers: a batch then holds whatever arrived while the
	// previous one committed.
	EnqueueWindow time.Duration
	// EnqueueMaxBatch bounds the jobs of one group-commit transaction.
	// Default 1000.
	EnqueueMaxBatch int
	// EnqueueFlushers is how many group-commit transactions may be in
	// flight at once. Default 1: fewer, larger transactions cost the
	// database less than more, smaller ones.
	EnqueueFlushers int
	// DisableGroupCommit makes every Enqueue call insert its jobs, and
	// every run that ends with Next jobs complete its job and admit them,
	// in a transaction of its own. EnqueueWindow, EnqueueMaxBatch and
	// EnqueueFlushers apply to both group commits.
	DisableGroupCommit bool

	// DefaultTimeout stands for the Timeout of groups subscribed with a
	// zero GroupOptions.Timeout. Default 1 minute.
	DefaultTimeout time.Duration
	// LeaseMargin is the bookkeeping margin of leases. A run of a group
	// whose Timeout is T has its context cancelled by the queue after
	// T+LeaseMargin (the handler is expected to end its own work by T),
	// and River's rescuer may take the job back only after
	// T+2×LeaseMargin, so that a job is never in flight twice. Default
	// 30 s; tests use a short one.
	LeaseMargin time.Duration
	// RescueInterval, when positive, makes every node take back the jobs
	// whose lease has expired every RescueInterval, in addition to River's
	// rescuer, which runs on the elected leader every 30 s. It uses the
	// same driver operations as River's rescuer. Zero leaves rescue to
	// River alone.
	RescueInterval time.Duration

	// NodeTimeout is how long a node may go without refreshing its
	// broadcast queues before other nodes stop addressing broadcast jobs
	// to it and delete the ones waiting for it. Nodes refresh every
	// NodeTimeout/3. Default 30 s.
	NodeTimeout time.Duration
	// IdlePollInterval is how often WaitIdle looks at the job table.
	// Default 25 ms.
	IdlePollInterval time.Duration

	// DeadRetention is how long dead jobs are kept for Dead; -1 keeps them
	// forever. Default 30 days. It sets River's retention of cancelled and
	// discarded jobs, which applies to every River job in the schema.
	DeadRetention time.Duration
	// CompletedRetention is how long River keeps completed jobs; -1 keeps
	// them forever. Outhook has no use for them. Default 10 minutes. It
	// applies to the jobs River completes: see KeepCompleted.
	CompletedRetention time.Duration
	// KeepCompleted makes the queue leave completed jobs in River's table,
	// marked completed, until CompletedRetention has passed, as River does.
	// By default, on Postgres, the queue deletes a job as soon as its
	// handler is done with it: outhook has no use for completed jobs, and
	// marking a job completed writes a new version of its row, with an
	// entry in each of River's indexes (two of them GIN indexes of the
	// args), where a deletion writes none. Jobs River completes itself (when
	// the deletion loses a race with River's completer, say) are kept as
	// with KeepCompleted. On SQLite, completed jobs are always kept (SQLite
	// would reuse the IDs of deleted jobs).
	KeepCompleted bool

	// Schema is the Postgres schema of River's tables (River's
	// Config.Schema). Empty means the connections' search_path.
	Schema string
}

// resolve applies the defaults and validates c.
func (c Config) resolve() (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NodeID == "" {
		c.NodeID = randomNodeID()
	}
	if !utf8.ValidString(c.NodeID) || strings.IndexByte(c.NodeID, 0) >= 0 {
		return c, fmt.Errorf("riverqueue: Config.NodeID %q is not valid UTF-8 without NUL bytes", c.NodeID)
	}
	ints := []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxWorkers", &c.MaxWorkers, DefaultMaxWorkers},
		{"EnqueueMaxBatch", &c.EnqueueMaxBatch, DefaultEnqueueMaxBatch},
		{"EnqueueFlushers", &c.EnqueueFlushers, DefaultEnqueueFlushers},
	}
	for _, f := range ints {
		if *f.v < 0 {
			return c, fmt.Errorf("riverqueue: Config.%s must not be negative, got %d", f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.MaxWorkers > 10_000 {
		return c, fmt.Errorf("riverqueue: Config.MaxWorkers must be at most 10000 (River's limit), got %d", c.MaxWorkers)
	}
	for g, n := range c.GroupMaxWorkers {
		if n < 1 || n > 10_000 {
			return c, fmt.Errorf("riverqueue: Config.GroupMaxWorkers[%q] must be between 1 and 10000, got %d", g, n)
		}
	}
	durs := []struct {
		name     string
		v        *time.Duration
		def      time.Duration
		minusOne bool // -1 is allowed
	}{
		{"FetchCooldown", &c.FetchCooldown, DefaultFetchCooldown, false},
		{"FetchPollInterval", &c.FetchPollInterval, DefaultFetchPollInterval, false},
		{"EnqueueWindow", &c.EnqueueWindow, DefaultEnqueueWindow, true},
		{"DefaultTimeout", &c.DefaultTimeout, DefaultTimeout, false},
		{"LeaseMargin", &c.LeaseMargin, DefaultLeaseMargin, false},
		{"RescueInterval", &c.RescueInterval, 0, false},
		{"NodeTimeout", &c.NodeTimeout, DefaultNodeTimeout, false},
		{"IdlePollInterval", &c.IdlePollInterval, DefaultIdlePollInterval, false},
		{"DeadRetention", &c.DeadRetention, DefaultDeadRetention, true},
		{"CompletedRetention", &c.CompletedRetention, DefaultCompletedRetention, true},
	}
	for _, f := range durs {
		if *f.v < 0 && !(f.minusOne && *f.v == -1) {
			return c, fmt.Errorf("riverqueue: Config.%s must not be negative, got %s", f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.FetchCooldown < time.Millisecond {
		return c, fmt.Errorf("riverqueue: Config.FetchCooldown must be at least 1ms (River's minimum), got %s", c.FetchCooldown)
	}
	if c.FetchPollInterval < c.FetchCooldown {
		return c, fmt.Errorf("riverqueue: Config.FetchPollInterval (%s) must not be shorter than FetchCooldown (%s)", c.FetchPollInterval, c.FetchCooldown)
	}
	if c.NodeTimeout < 3*time.Millisecond {
		return c, fmt.Errorf("riverqueue: Config.NodeTimeout must be at least 3ms, got %s", c.NodeTimeout)
	}
	return c, nil
}

// randomNodeID returns "<host>-<pid>-<8 hex digits>".
func randomNodeID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "node"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Queue is a queue.Queue on River. Create one with New (or with the
// postgres and sqlite packages). All methods are safe for concurrent use.
type Queue[TTx any] struct {
	be     Backend[TTx]
	cfg    Config
	log    *slog.Logger
	client *river.Client[TTx]
	batch  *batch.Batcher[enqueueItem] // Enqueue's group commit; nil with DisableGroupCommit
	// completions is the group commit of the Next jobs of finished runs;
	// nil with DisableGroupCommit.
	completions *batch.Batcher[*completion]
	// finished deletes the jobs of runs that ended Done without Next jobs
	// (see worker.Work); nil unless the queue deletes completed jobs.
	finished *batch.Batcher[*river.Job[jobArgs]]

	// runCtx is given to River's Start and runs the maintenance loop.
	// River treats its end as a hard stop, which it does not tell apart
	// from other cancellations: Stop ends it only after River has stopped.
	runCtx    context.Context
	runCancel context.CancelFunc
	// insertCtx bounds the group-commit inserts; a Stop out of time ends
	// it.
	insertCtx    context.Context
	insertCancel context.CancelFunc

	mu          sync.Mutex // serializes Subscribe, Start and Stop
	state       atomic.Int32
	groups      atomic.Pointer[map[string]*group] // replaced, never modified
	maintWG     sync.WaitGroup
	maintLogged map[string]time.Time // by task: last error logged; maintenance goroutine only
	stopped     chan struct{}        // closed when Stop has finished
}

// Queue states.
const (
	stateNew int32 = iota
	stateRunning
	stateStopping
	stateStopped
)

// group is a subscribed worker group.
type group struct {
	name    string
	handler queue.Handler
	opts    queue.GroupOptions
	timeout time.Duration // opts.Timeout, or Config.DefaultTimeout
	queue   string        // the River queue this node works for it
	prefix  string        // of the group's per-node queues, for broadcast groups
}

var _ queue.Queue = (*Queue[struct{}])(nil)
var _ queue.Idler = (*Queue[struct{}])(nil)
var _ queue.TxEnqueuer[struct{}] = (*Queue[struct{}])(nil)

// New returns a queue on the backend's database, configured by cfg; a nil
// cfg selects all defaults. It does not touch the database: Start checks
// that River's tables exist.
func New[TTx any](be Backend[TTx], cfg *Config) (*Queue[TTx], error) {
	switch {
	case be.Driver == nil:
		return nil, errors.New("riverqueue: Backend.Driver is nil")
	case be.Begin == nil || be.Commit == nil || be.Rollback == nil:
		return nil, errors.New("riverqueue: Backend.Begin, Commit and Rollback must be set")
	}
	if be.Name == "" {
		be.Name = "riverqueue"
	}
	if be.Migrate == "" {
		be.Migrate = "rivermigrate"
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c, err := c.resolve()
	if err != nil {
		return nil, err
	}
	q := &Queue[TTx]{be: be, cfg: c, log: c.Logger, stopped: make(chan struct{}), maintLogged: map[string]time.Time{}}
	q.runCtx, q.runCancel = context.WithCancel(context.Background())
	q.insertCtx, q.insertCancel = context.WithCancel(context.Background())
	empty := map[string]*group{}
	q.groups.Store(&empty)

	workers := river.NewWorkers()
	if err := river.AddWorkerSafely[jobArgs](workers, &worker[TTx]{q: q}); err != nil {
		return nil, fmt.Errorf("riverqueue: %w", err)
	}
	client, err := river.NewClient(be.Driver, &river.Config{
		ID:                clientID(c.NodeID),
		Logger:            c.Logger,
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{homeQueue: {MaxWorkers: 1}},
		MaxAttempts:       maxAttempts,
		RetryPolicy:       retryNow{},
		ErrorHandler:      &errorHandler{log: c.Logger},
		FetchCooldown:     c.FetchCooldown,
		FetchPollInterval: c.FetchPollInterval,
		// Every job carries its own timeout (worker.Timeout), which River's
		// rescuer also honours; the client-wide one is never used.
		JobTimeout: -1,
		// The rescuer looks at jobs running longer than this, then leaves
		// each alone until its own lease (Timeout) has passed.
		RescueStuckJobsAfter:        c.LeaseMargin,
		CancelledJobRetentionPeriod: c.DeadRetention,
		DiscardedJobRetentionPeriod: c.DeadRetention,
		CompletedJobRetentionPeriod: c.CompletedRetention,
		Schema:                      c.Schema,
	})
	if err != nil {
		return nil, fmt.Errorf("riverqueue: create River client: %w", err)
	}
	q.client = client
	if !c.DisableGroupCommit {
		q.batch = newBatcher(q.insertCtx, commitEnqueues(q.insert),
			func(it enqueueItem) int { return len(it.params) },
			c.EnqueueWindow, c.EnqueueMaxBatch, c.EnqueueFlushers)
		// Completions are cancelled only once River has stopped, when no
		// run is left to report one.
		q.completions = newBatcher(q.runCtx, q.commitCompletions,
			func(c *completion) int { return 1 + len(c.next) },
			c.EnqueueWindow, c.EnqueueMaxBatch, c.EnqueueFlushers)
		if q.deletes() {
			q.finished = newBatcher(q.runCtx, q.finishDone, nil, c.EnqueueWindow, c.EnqueueMaxBatch, c.EnqueueFlushers)
		}
	}
	return q, nil
}

// clientID derives River's client ID (at most 100 characters) from the
// node ID.
func clientID(node string) string {
	id := "outhook-" + node
	if len(id) > 100 {
		id = id[:89] + "-" + shortHash(node, 10)
	}
	return id
}

// Client returns the River client the queue runs on, for inspection and
// River's own tooling. Jobs must only be added through the queue.
func (q *Queue[TTx]) Client() *river.Client[TTx] { return q.client }

// NodeID returns the node's ID.
func (q *Queue[TTx]) NodeID() string { return q.cfg.NodeID }

// group returns the subscribed group named name, or nil.
func (q *Queue[TTx]) group(name string) *group { return (*q.groups.Load())[name] }

// deletes reports whether the queue completes jobs by deleting them.
func (q *Queue[TTx]) deletes() bool {
	return q.be.Finish != nil && q.be.FinishDeletes && !q.cfg.KeepCompleted
}

// closed reports whether Stop has begun.
func (q *Queue[TTx]) closed() bool { return q.state.Load() >= stateStopping }

// lease returns a job's lease: River's deadline for a run and the time after
// which its rescuer may take the job back from a node that went silent. It
// is the group's Timeout (the larger of this node's and the enqueuer's) plus
// twice the lease margin: the handler's context ends one margin before.
func (q *Queue[TTx]) lease(a *jobArgs) time.Duration {
	t := time.Duration(a.TimeoutMS) * time.Millisecond
	if g := q.group(a.Group); g != nil {
		t = max(t, g.timeout)
	}
	if t <= 0 {
		t = q.cfg.DefaultTimeout
	}
	return t + 2*q.cfg.LeaseMargin
}

// Subscribe registers h as the handler of group and adds the group's River
// queue to the client, starting its fetching at once when the queue is
// running. A work-queue group's River queue is shared by all nodes; a
// broadcast group gets one River queue per node. It returns an error for an
// empty group, a nil handler, a negative Timeout or a group already
// subscribed, and [queue.ErrClosed] after Stop has begun.
func (q *Queue[TTx]) Subscribe(name string, h queue.Handler, opts queue.GroupOptions) error {
	switch {
	case name == "":
		return errors.New("riverqueue: subscribe: empty group")
	case !utf8.ValidString(name) || strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("riverqueue: subscribe %q: group is not valid UTF-8 without NUL bytes", name)
	case h == nil:
		return fmt.Errorf("riverqueue: subscribe %q: nil handler", name)
	case opts.Timeout < 0:
		return fmt.Errorf("riverqueue: subscribe %q: negative Timeout %s", name, opts.Timeout)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed() {
		return queue.ErrClosed
	}
	old := *q.groups.Load()
	if _, dup := old[name]; dup {
		return fmt.Errorf("riverqueue: group %q already subscribed", name)
	}
	g := &group{name: name, handler: h, opts: opts, timeout: opts.Timeout}
	if g.timeout == 0 {
		g.timeout = q.cfg.DefaultTimeout
	}
	if opts.Broadcast {
		g.prefix = broadcastPrefix(name)
		g.queue = broadcastQueueName(name, q.cfg.NodeID)
	} else {
		g.queue = workQueueName(name)
	}
	for _, o := range old {
		if o.queue == g.queue {
			return fmt.Errorf("riverqueue: groups %q and %q map to the same River queue %q", o.name, name, g.queue)
		}
	}
	workers := q.cfg.MaxWorkers
	if n, ok := q.cfg.GroupMaxWorkers[name]; ok {
		workers = n
	}
	// River's Queues().Add works before and after Start; after, it starts
	// the queue's producer at once.
	if err := q.client.Queues().Add(g.queue, river.QueueConfig{MaxWorkers: workers}); err != nil {
		return fmt.Errorf("riverqueue: subscribe %q: add River queue %q: %w", name, g.queue, err)
	}
	next := make(map[string]*group, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = g
	q.groups.Store(&next)
	return nil
}

// Enqueue admits jobs, all or none, each in its group's River queue, in a
// transaction it shares with concurrent calls (group commit; see the
// package documentation). It returns once that transaction has committed,
// with the transaction's outcome for these jobs.
//
// A job whose RunAt is after now is scheduled; CreatedAt is filled in when
// zero (in the stored job; the caller's Job is not modified). An Enqueue of a
// (Group, ID) that is live (not yet completed or dead) is a no-op. A job of a
// broadcast group is admitted once for every live node (this one included).
//
// It returns an error, admitting nothing, when a job is nil, has no group,
// or names a group with no handler on this node (wrapping
// [queue.ErrUnknownGroup]); ctx.Err() when ctx is done before the jobs are
// written (see batch.Batcher.Do for a ctx that ends during the commit);
// [queue.ErrClosed] after Stop has begun; and the database's error. The
// queue is never full: the database is the limit.
func (q *Queue[TTx]) Enqueue(ctx context.Context, jobs ...*queue.Job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if q.closed() {
		return queue.ErrClosed
	}
	if len(jobs) == 0 {
		return nil
	}
	params, keys, err := q.buildParams(ctx, jobs, priorityEnqueue, q.listQueues)
	if err != nil {
		return err
	}
	if q.batch == nil {
		return q.insert(ctx, params)
	}
	return q.batch.Do(ctx, enqueueItem{params: params, keys: keys})
}

// EnqueueTx admits jobs inside tx, a transaction of the application's own
// database: they exist if and only if tx commits, and become visible to the
// workers then. It neither commits nor rolls back tx, and uses nothing but
// tx (with SQLite's single connection, anything else would wait for tx).
// Errors are those of Enqueue.
func (q *Queue[TTx]) EnqueueTx(ctx context.Context, tx TTx, jobs ...*queue.Job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if q.closed() {
		return queue.ErrClosed
	}
	if len(jobs) == 0 {
		return nil
	}
	params, _, err := q.buildParams(ctx, jobs, priorityEnqueue, func(ctx context.Context) ([]*rivertype.Queue, error) {
		res, err := q.client.QueueListTx(ctx, tx, river.NewQueueListParams().First(queueListMax))
		if err != nil {
			return nil, err
		}
		return res.Queues, nil
	})
	if err != nil {
		return err
	}
	if _, err := q.client.InsertManyTx(ctx, tx, params); err != nil {
		return q.insertErr(ctx, err)
	}
	return nil
}

// insert writes jobs in a transaction of their own.
func (q *Queue[TTx]) insert(ctx context.Context, params []river.InsertManyParams) error {
	if _, err := q.client.InsertMany(ctx, params); err != nil {
		return q.insertErr(ctx, err)
	}
	return nil
}

// insertErr wraps an insert error; context errors are returned as they are.
func (q *Queue[TTx]) insertErr(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return ctxErr
	}
	return fmt.Errorf("%s: enqueue: %w", q.be.Name, err)
}

// listQueues lists River's queues.
func (q *Queue[TTx]) listQueues(ctx context.Context) ([]*rivertype.Queue, error) {
	res, err := q.client.QueueList(ctx, river.NewQueueListParams().First(queueListMax))
	if err != nil {
		return nil, err
	}
	return res.Queues, nil
}

// checkNext validates the Next jobs of a Result.
func (q *Queue[TTx]) checkNext(jobs []*queue.Job) error {
	for i, j := range jobs {
		if err := checkJob(i, j); err != nil {
			return fmt.Errorf("riverqueue: Next: %w", err)
		}
		if q.group(j.Group) == nil {
			return fmt.Errorf("riverqueue: Next job %q: %w %q", j.ID, queue.ErrUnknownGroup, j.Group)
		}
	}
	return nil
}

// buildParams validates jobs and turns them into River insert parameters,
// with the dedupe key of each ("" for jobs without an ID). A job of a
// broadcast group becomes one job per live node, found with list. Duplicate
// (Group, ID) pairs within the call are admitted once.
func (q *Queue[TTx]) buildParams(ctx context.Context, jobs []*queue.Job, priority int, list func(context.Context) ([]*rivertype.Queue, error)) ([]river.InsertManyParams, []string, error) {
	groups := *q.groups.Load()
	broadcast := false
	for i, j := range jobs {
		if err := checkJob(i, j); err != nil {
			return nil, nil, err
		}
		g := groups[j.Group]
		if g == nil {
			return nil, nil, fmt.Errorf("riverqueue: job %q: %w %q", j.ID, queue.ErrUnknownGroup, j.Group)
		}
		broadcast = broadcast || g.opts.Broadcast
	}
	var queues []*rivertype.Queue
	if broadcast {
		var err error
		if queues, err = list(ctx); err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				return nil, nil, ctxErr
			}
			return nil, nil, fmt.Errorf("%s: enqueue: list the nodes of broadcast groups: %w", q.be.Name, err)
		}
	}
	now := time.Now()
	params := make([]river.InsertManyParams, 0, len(jobs))
	keys := make([]string, 0, len(jobs))
	var seen map[string]struct{}
	add := func(j *queue.Job, g *group, target string) {
		var key string
		if j.ID != "" {
			key = j.Group + "\x00" + j.ID + "\x00" + target
			if seen == nil {
				seen = make(map[string]struct{}, len(jobs))
			}
			if _, dup := seen[key]; dup {
				return
			}
			seen[key] = struct{}{}
		}
		args := &jobArgs{Group: j.Group, ID: j.ID, JobKind: j.Kind, CreatedAt: j.CreatedAt, TimeoutMS: g.timeout.Milliseconds(), Trace: j.Trace}
		if args.CreatedAt.IsZero() {
			args.CreatedAt = now
		}
		args.setPayload(j.Payload)
		opts := &river.InsertOpts{Queue: target, Priority: priority, MaxAttempts: maxAttempts}
		if j.RunAt.After(now) {
			args.RunAt = j.RunAt
			if j.RunAt.Sub(now) > scheduleAhead {
				opts.ScheduledAt = j.RunAt
			}
		}
		if j.ID != "" {
			opts.UniqueOpts = uniqueOpts
		}
		params = append(params, river.InsertManyParams{Args: args, InsertOpts: opts})
		keys = append(keys, key)
	}
	for _, j := range jobs {
		g := groups[j.Group]
		if !g.opts.Broadcast {
			add(j, g, g.queue)
			continue
		}
		for _, target := range q.broadcastTargets(g, queues, now) {
			add(j, g, target)
		}
	}
	return params, keys, nil
}

// broadcastTargets returns the per-node queues of a broadcast group whose
// nodes are alive: this node's, and those refreshed within NodeTimeout.
func (q *Queue[TTx]) broadcastTargets(g *group, queues []*rivertype.Queue, now time.Time) []string {
	targets := []string{g.queue}
	horizon := now.Add(-q.cfg.NodeTimeout)
	for _, rq := range queues {
		if rq.Name != g.queue && strings.HasPrefix(rq.Name, g.prefix) && rq.UpdatedAt.After(horizon) {
			targets = append(targets, rq.Name)
		}
	}
	return targets
}

// Start checks that River's tables exist and are current, starts the River
// client and the queue's maintenance, and returns. ctx bounds only the
// checks: jobs do not run under it. It returns an error wrapping
// ErrNotMigrated, naming the migration to run, when the tables are missing
// or old; an error naming the database when it cannot be reached; an error
// when called twice; and [queue.ErrClosed] after Stop has begun.
func (q *Queue[TTx]) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch q.state.Load() {
	case stateRunning:
		return errors.New("riverqueue: already started")
	case stateStopping, stateStopped:
		return queue.ErrClosed
	}
	if err := q.checkMigrated(ctx); err != nil {
		return err
	}
	// River runs jobs under the context given to Start and treats its end
	// as a hard stop: give it the queue's own.
	if err := q.client.Start(q.runCtx); err != nil {
		return fmt.Errorf("%s: start River: %w", q.be.Name, err)
	}
	q.maintWG.Add(1)
	go q.maintain(q.runCtx)
	q.state.Store(stateRunning)
	return nil
}

// checkMigrated checks River's migrations with rivermigrate.
func (q *Queue[TTx]) checkMigrated(ctx context.Context) error {
	m, err := rivermigrate.New(q.be.Driver, &rivermigrate.Config{Logger: q.log, Schema: q.cfg.Schema})
	if err != nil {
		return fmt.Errorf("%s: %w", q.be.Name, err)
	}
	res, err := m.Validate(ctx, nil)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return ctxErr
		}
		return fmt.Errorf("%s: cannot reach the database to check River's tables: %w", q.be.Name, err)
	}
	if !res.OK {
		return fmt.Errorf("%s: %w (%s): run %s before starting the queue", q.be.Name, ErrNotMigrated, strings.Join(res.Messages, "; "), q.be.Migrate)
	}
	return nil
}

// Stop stops the queue: Enqueue, EnqueueTx and Subscribe return
// [queue.ErrClosed] from now on, Enqueue calls already waiting for their
// group commit are written, and River stops fetching and waits for the
// running handlers, bounded by ctx. When ctx ends first, Stop cancels the
// handlers' contexts (River's StopAndCancel), waits for them to return, and
// returns ctx.Err(); a run cut short that way, reported as a Retry with its
// context's error, does not count as an attempt. Jobs not yet run stay in
// the database for the next start or another node. Stop is idempotent: a
// later call waits for the first to finish (or its own ctx) and returns nil.
func (q *Queue[TTx]) Stop(ctx context.Context) error {
	q.mu.Lock()
	switch q.state.Load() {
	case stateStopping, stateStopped:
		q.mu.Unlock()
		select {
		case <-q.stopped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	q.state.Store(stateStopping)
	q.mu.Unlock()

	var err error
	if q.batch != nil {
		q.batch.Close()
		err = q.batch.Wait(ctx)
	}
	if err == nil {
		err = q.client.Stop(ctx)
	}
	if err != nil {
		// Out of time: cancel the inserts in flight and the running
		// handlers, and wait for the handlers to return. StopAndCancel
		// cancels the runs with River's stop as the cause, which is how
		// River knows not to count them.
		q.insertCancel()
		if cerr := q.client.StopAndCancel(context.Background()); cerr != nil {
			q.log.Error("riverqueue: stop River", "error", cerr)
		}
		if q.batch != nil {
			_ = q.batch.Wait(context.Background())
		}
	}
	q.insertCancel()
	if q.completions != nil {
		// River has stopped: every run has reported; the flusher exits
		// within its linger window.
		q.completions.Close()
		_ = q.completions.Wait(context.Background())
	}
	if q.finished != nil {
		q.finished.Close()
		_ = q.finished.Wait(context.Background())
	}
	q.runCancel()
	q.maintWG.Wait()
	q.state.Store(stateStopped)
	close(q.stopped)
	return err
}

// WaitIdle blocks until no job of this queue's worker groups is available,
// scheduled, retryable, pending or running, polling River's job table every
// IdlePollInterval, and returns nil; or until ctx is done, and returns
// ctx.Err(). The jobs of a work-queue group count wherever they run (another
// node may hold them); of a broadcast group, only the copies addressed to
// this node. Jobs of groups this node does not serve are not its work. After
// Stop, with jobs left, it returns an error wrapping [queue.ErrClosed].
func (q *Queue[TTx]) WaitIdle(ctx context.Context) error {
	var timer *time.Timer
	for {
		groups := *q.groups.Load()
		if len(groups) == 0 {
			return ctx.Err()
		}
		names := make([]string, 0, len(groups))
		for _, g := range groups {
			names = append(names, g.queue)
		}
		busy, err := q.anyLive(ctx, names)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return fmt.Errorf("%s: wait idle: %w", q.be.Name, err)
		}
		if !busy {
			return nil
		}
		if q.state.Load() == stateStopped {
			return fmt.Errorf("%s: stopped with jobs left: %w", q.be.Name, queue.ErrClosed)
		}
		if timer == nil {
			timer = time.NewTimer(q.cfg.IdlePollInterval)
			defer timer.Stop()
		} else {
			timer.Reset(q.cfg.IdlePollInterval)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// StateCount is how many of outhook's jobs a River state holds, and when
// the oldest of them was created: a row of Backend.Stats.
type StateCount struct {
	State  rivertype.JobState
	N      int
	Oldest time.Time
}

// Stats implements queue.StatsReporter, with one query that counts the
// jobs of every worker group by state (Backend.Stats): available and
// pending jobs are ready, scheduled and retryable ones delayed, cancelled
// and discarded ones dead (kept for Config.DeadRetention). The oldest
// times are those of River's rows (when each job was enqueued), not
// queue.Job.CreatedAt, which River keeps in the args. The counts
// cover the whole schema, every node's jobs included; the query reads
// River's state index, so it costs in proportion to the jobs it counts:
// ask it at metric intervals, not per job.
func (q *Queue[TTx]) Stats(ctx context.Context) (queue.Stats, error) {
	if q.be.Stats == nil {
		return queue.Stats{}, fmt.Errorf("%s: stats: %w", q.be.Name, errors.ErrUnsupported)
	}
	rows, err := q.be.Stats(ctx, q.cfg.Schema)
	if err != nil {
		return queue.Stats{}, fmt.Errorf("%s: stats: %w", q.be.Name, err)
	}
	var st queue.Stats
	oldest := func(t *time.Time, o time.Time) {
		if !o.IsZero() && (t.IsZero() || o.Before(*t)) {
			*t = o
		}
	}
	for _, r := range rows {
		switch r.State {
		case rivertype.JobStateAvailable, rivertype.JobStatePending:
			st.Ready += r.N
			oldest(&st.OldestReady, r.Oldest)
		case rivertype.JobStateScheduled, rivertype.JobStateRetryable:
			st.Delayed += r.N
			oldest(&st.OldestDelayed, r.Oldest)
		case rivertype.JobStateRunning:
			st.Running += r.N
		case rivertype.JobStateCancelled, rivertype.JobStateDiscarded:
			st.Dead += r.N
		}
	}
	return st, nil
}

// anyLive reports whether a River queue of names holds a live job, with
// the backend's Live when it has one.
func (q *Queue[TTx]) anyLive(ctx context.Context, names []string) (bool, error) {
	if q.be.Live != nil {
		return q.be.Live(ctx, q.cfg.Schema, names)
	}
	params := river.NewJobListParams().Kinds(jobKind).Queues(names...).States(liveStates...).First(1)
	res, err := q.client.JobList(ctx, params)
	if err != nil {
		return false, err
	}
	return len(res.Jobs) > 0, nil
}

// Dead returns up to limit dead jobs (at most 10,000), most recent first;
// none when limit is not positive. Dead jobs are the ones a handler gave up
// on, poisoned jobs (whose args no longer decode; their Group is empty, their
// ID is "river-<River's job ID>" and their Payload is the raw args), and
// jobs River discarded or an operator cancelled.
func (q *Queue[TTx]) Dead(ctx context.Context, limit int) ([]*queue.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	params := river.NewJobListParams().
		Kinds(jobKind).
		States(deadStates...).
		OrderBy(river.JobListOrderByFinalizedAt, river.SortOrderDesc).
		First(min(limit, 10_000))
	res, err := q.client.JobList(ctx, params)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("%s: list dead jobs: %w", q.be.Name, err)
	}
	out := make([]*queue.Job, 0, len(res.Jobs))
	for _, row := range res.Jobs {
		args, err := decodeArgs(row)
		if err != nil {
			out = append(out, &queue.Job{
				ID:        fmt.Sprintf("river-%d", row.ID),
				Payload:   row.EncodedArgs,
				Attempt:   row.Attempt,
				RunAt:     row.ScheduledAt,
				CreatedAt: row.CreatedAt,
				Errors:    attemptErrors(row),
			})
			continue
		}
		out = append(out, toJob(row, args))
	}
	return out, nil
}
