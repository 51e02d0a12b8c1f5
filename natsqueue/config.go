package natsqueue

import (
	"fmt"
	"log/slog"
	"regexp"
	"time"
)

// Defaults for the zero fields of Config.
const (
	// DefaultStream is the default Config.Stream.
	DefaultStream = "OUTHOOK"
	// DefaultMaxWorkers is the default Config.MaxWorkers.
	DefaultMaxWorkers = 16
	// DefaultAckWait is the default Config.AckWait.
	DefaultAckWait = time.Minute
	// DefaultAckMargin is the default Config.AckMargin.
	DefaultAckMargin = 30 * time.Second
	// DefaultMaxDeliver is the default Config.MaxDeliver.
	DefaultMaxDeliver = 100
	// DefaultDuplicateWindow is the default Config.DuplicateWindow.
	DefaultDuplicateWindow = 5 * time.Minute
	// DefaultDeadMaxJobs is the default Config.DeadMaxJobs.
	DefaultDeadMaxJobs = 10_000
	// DefaultBroadcastMaxAge is the default Config.BroadcastMaxAge.
	DefaultBroadcastMaxAge = time.Hour
	// DefaultLedgerTTL is the default Config.LedgerTTL.
	DefaultLedgerTTL = 7 * 24 * time.Hour
	// DefaultRequestTimeout is the default Config.RequestTimeout.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultPollInterval is the default Config.PollInterval.
	DefaultPollInterval = 25 * time.Millisecond
)

// Config configures a Queue. The zero value of every field selects its
// default; negative values are invalid unless a field says otherwise. All
// the nodes that share a Stream should use the same Config.
type Config struct {
	// Stream names the JetStream stream of work jobs and prefixes everything
	// else the queue creates: the streams Stream+"_DEAD" and
	// Stream+"_BCAST", the key-value bucket Stream+"_LEDGER" (stream
	// "KV_"+Stream+"_LEDGER") and every subject ("<Stream>.work.<token>",
	// "<Stream>.bcast.<token>", "<Stream>.dead.<token>"). Letters, digits,
	// '_' and '-' only. Default "OUTHOOK".
	Stream string
	// Replicas is the number of replicas of the streams, the bucket and the
	// durable consumers, for a clustered JetStream. Default 1.
	Replicas int
	// MaxWorkers bounds the handlers of one worker group running at once in
	// this process. The queue never pulls more messages than it has idle
	// workers, so a message never waits in this process with its lease
	// running. Default 16.
	MaxWorkers int
	// AckWait is the lease (the consumer's AckWait) of a group whose
	// GroupOptions.Timeout is zero. Default one minute.
	AckWait time.Duration
	// AckMargin is added to a group's GroupOptions.Timeout to make its
	// lease, for the handler's bookkeeping after its own context ends.
	// Default 30 seconds.
	AckMargin time.Duration
	// MaxDeliver is the number of runs after which a job that comes back
	// once more (because every run crashed its process or outlived its
	// lease, say) is dead-lettered without running. -1 means no limit.
	// Default 100.
	MaxDeliver int
	// DuplicateWindow is the stream's duplicate window: an Enqueue of a
	// (Group, ID) published less than this long ago is dropped as a
	// duplicate. It must outlast a lease plus a run, so that a job that runs
	// again after a crash produces its Next jobs within the window (see the
	// package documentation). Default five minutes.
	DuplicateWindow time.Duration
	// MaxJobs bounds the jobs in the work stream (ready, delayed and
	// running, all groups together). Enqueue fails with an error wrapping
	// queue.ErrQueueFull when it is reached. -1 means no limit (only the
	// account's storage). Default -1.
	MaxJobs int64
	// DeadMaxJobs is how many dead jobs the dead-letter stream keeps, the
	// oldest being discarded first. Default 10_000.
	DeadMaxJobs int64
	// DeadMaxAge discards dead jobs older than this. Zero keeps them until
	// DeadMaxJobs pushes them out.
	DeadMaxAge time.Duration
	// BroadcastMaxAge is how long a broadcast job stays in its stream for
	// nodes to run it. Default one hour.
	BroadcastMaxAge time.Duration
	// LedgerTTL is how long the run ledger keeps the record of a job's
	// failed runs after its last update. It must outlast the longest delay
	// between two runs of a job. Default seven days.
	LedgerTTL time.Duration
	// RequestTimeout bounds the NATS requests the queue makes on its own
	// behalf (acknowledgements, the ledger, dead letters, consumer
	// creation after Start), and those of Start, Enqueue, WaitIdle and Dead
	// when their context has no deadline. Default ten seconds.
	RequestTimeout time.Duration
	// PollInterval is how often WaitIdle asks the server whether the
	// queue's consumers are empty. Default 25 milliseconds.
	PollInterval time.Duration
	// Logger receives the queue's logs. Nil means slog.Default().
	Logger *slog.Logger
}

var streamNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// withDefaults validates c and returns a copy with the defaults filled in.
func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Stream == "" {
		out.Stream = DefaultStream
	}
	// The stream's name becomes a subject token and the name of a
	// key-value bucket, whose names allow only these characters
	// (https://docs.nats.io/nats-concepts/jetstream/streams).
	if !streamNameRE.MatchString(out.Stream) {
		return out, fmt.Errorf("natsqueue: Config.Stream %q must contain only letters, digits, '_' and '-'", out.Stream)
	}
	if len(out.Stream) > 200 {
		return out, fmt.Errorf("natsqueue: Config.Stream is %d characters long, more than 200", len(out.Stream))
	}
	ints := []struct {
		name string
		v    *int
		def  int
		min  int
	}{
		{"Replicas", &out.Replicas, 1, 0},
		{"MaxWorkers", &out.MaxWorkers, DefaultMaxWorkers, 0},
		{"MaxDeliver", &out.MaxDeliver, DefaultMaxDeliver, -1},
	}
	for _, f := range ints {
		if *f.v < f.min {
			return out, fmt.Errorf("natsqueue: Config.%s must be >= %d, got %d", f.name, f.min, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if out.Replicas > 5 {
		return out, fmt.Errorf("natsqueue: Config.Replicas must be at most 5, got %d", out.Replicas)
	}
	int64s := []struct {
		name string
		v    *int64
		def  int64
		min  int64
	}{
		{"MaxJobs", &out.MaxJobs, -1, -1},
		{"DeadMaxJobs", &out.DeadMaxJobs, DefaultDeadMaxJobs, 0},
	}
	for _, f := range int64s {
		if *f.v < f.min {
			return out, fmt.Errorf("natsqueue: Config.%s must be >= %d, got %d", f.name, f.min, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	durs := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"AckWait", &out.AckWait, DefaultAckWait},
		{"AckMargin", &out.AckMargin, DefaultAckMargin},
		{"DuplicateWindow", &out.DuplicateWindow, DefaultDuplicateWindow},
		{"DeadMaxAge", &out.DeadMaxAge, 0},
		{"BroadcastMaxAge", &out.BroadcastMaxAge, DefaultBroadcastMaxAge},
		{"LedgerTTL", &out.LedgerTTL, DefaultLedgerTTL},
		{"RequestTimeout", &out.RequestTimeout, DefaultRequestTimeout},
		{"PollInterval", &out.PollInterval, DefaultPollInterval},
	}
	for _, f := range durs {
		if *f.v < 0 {
			return out, fmt.Errorf("natsqueue: Config.%s must not be negative, got %s", f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	// JetStream counts in milliseconds at best; shorter leases are noise.
	if out.AckWait < 100*time.Millisecond {
		return out, fmt.Errorf("natsqueue: Config.AckWait must be at least 100ms, got %s", out.AckWait)
	}
	// The server refuses a duplicate window longer than the stream's
	// MaxAge.
	if out.DuplicateWindow > out.BroadcastMaxAge {
		return out, fmt.Errorf("natsqueue: Config.DuplicateWindow (%s) must not exceed Config.BroadcastMaxAge (%s)",
			out.DuplicateWindow, out.BroadcastMaxAge)
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	return out, nil
}

// Names of what the queue creates for a stream name.
func deadStreamName(stream string) string  { return stream + "_DEAD" }
func bcastStreamName(stream string) string { return stream + "_BCAST" }
func ledgerBucketName(stream string) string {
	return stream + "_LEDGER"
}
