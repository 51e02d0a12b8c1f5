package natsqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/outhook/outhook/queue"
)

// maxLedgerErrors bounds the errors kept per job, the newest being kept: a
// ledger entry must fit in one NATS message. Retry schedules end long
// before it.
const maxLedgerErrors = 200

// entry is what the run ledger knows of one message beyond what JetStream
// counts: the runs and errors of its failed runs, and the time it may run
// again. JetStream's delivery count (NumDelivered) counts every delivery,
// including those the queue hands back without running the job (too early,
// or cut short by Stop); an entry records how many runs had happened as of
// one delivery, so that
//
//	attempt(d) = Runs + (d - Delivery)
//
// counts every later delivery as a run: a run that crashed its process
// wrote nothing, and counts.
type entry struct {
	ID    string `json:"id"`
	Group string `json:"group"`
	// Runs is the number of runs as of delivery Delivery (which is one of
	// them when it failed, and not when it was handed back).
	Runs     int    `json:"runs"`
	Delivery uint64 `json:"delivery"`
	// RunAt is the earliest time of the next run.
	RunAt  time.Time            `json:"run_at,omitzero"`
	Errors []queue.AttemptError `json:"errors,omitempty"`
}

// attempt returns the attempt number of delivery d of a message whose
// ledger entry is e (nil when it has none).
func (e *entry) attempt(d uint64) int {
	switch {
	case e == nil:
		return int(d)
	case d > e.Delivery:
		return e.Runs + int(d-e.Delivery)
	default:
		// The consumer was recreated and counts from 1 again: assume no
		// run was lost.
		return e.Runs + 1
	}
}

// ledger stores entries by key.
type ledger interface {
	// get returns the entry of key, or nil when there is none.
	get(ctx context.Context, key string) (*entry, error)
	put(ctx context.Context, key string, e *entry) error
	del(ctx context.Context, key string) error
}

func ledgerKey(token string, seq uint64) string { return token + "." + strconv.FormatUint(seq, 10) }

// kvLedger keeps the entries of work jobs in a JetStream key-value bucket,
// shared by every node, keyed by group token and stream sequence.
type kvLedger struct{ kv jetstream.KeyValue }

func (l kvLedger) get(ctx context.Context, key string) (*entry, error) {
	kve, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("natsqueue: read run ledger: %w", err)
	}
	var e entry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return nil, fmt.Errorf("natsqueue: decode run ledger entry %s: %w", key, err)
	}
	return &e, nil
}

func (l kvLedger) put(ctx context.Context, key string, e *entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("natsqueue: encode run ledger entry: %w", err)
	}
	if _, err := l.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("natsqueue: write run ledger: %w", err)
	}
	return nil
}

func (l kvLedger) del(ctx context.Context, key string) error {
	if err := l.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("natsqueue: clear run ledger entry: %w", err)
	}
	return nil
}

// memLedger keeps the entries of broadcast jobs in memory: each node runs
// broadcast jobs on a consumer of its own, which lives no longer than the
// process, so neither does what it knows of their runs.
type memLedger struct {
	mu sync.Mutex
	m  map[string]*entry
}

func (l *memLedger) get(_ context.Context, key string) (*entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[key]
	if !ok {
		return nil, nil
	}
	c := *e
	return &c, nil
}

func (l *memLedger) put(_ context.Context, key string, e *entry) error {
	c := *e
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*entry{}
	}
	l.m[key] = &c
	return nil
}

func (l *memLedger) del(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
	return nil
}
