package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/outhook/outhook/riverqueue"
)

// river-raw: River's own throughput on the same database, in the same run,
// as the ceiling of the durable rows. A plain River client (riverpgxv5, its
// own job kind and queue, not through outhook) works jobs that carry the
// same payload with a worker that only counts them; the throughput phase
// inserts them in batches of rawBatch with InsertMany, the latency phase
// one Insert per event. Its workers and fetch cooldown are those of
// outhook's River queues (-durable-workers, riverqueue's defaults
// otherwise), so that the ratio of outhook-postgres to it is what outhook
// adds to River, not a difference of settings.

const (
	rawKind  = "outhook_bench_raw"
	rawQueue = "outhook_bench_raw"
	rawBatch = 1000
)

// rawArgs is river-raw's job: the benchmark's payload.
type rawArgs struct {
	Event BenchEvent `json:"event"`
}

func (rawArgs) Kind() string { return rawKind }

func (rawArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: rawQueue} }

// rawWorker counts each job where the other rows' receiver counts each
// delivery, and records emit→worked latency while the tally records.
type rawWorker struct {
	river.WorkerDefaults[rawArgs]
	r *riverRaw
}

func (w *rawWorker) Work(_ context.Context, job *river.Job[rawArgs]) error {
	now := w.r.clk.now()
	if w.r.tally.record.Load() {
		if emit, err := strconv.ParseInt(job.Args.Event.EmitNs, 10, 64); err == nil {
			w.r.tally.latency(now, emit)
		} else {
			w.r.bad.Add(1)
		}
	}
	w.r.tally.arrived(now)
	w.r.worked.Add(1)
	return nil
}

type riverRaw struct {
	tally   tally
	bad     atomic.Int64 // jobs whose emit time did not parse
	clk     clock
	shape   payloadShape
	backlog int
	pool    *pgxpool.Pool
	client  *river.Client[pgx.Tx]
	cancel  context.CancelFunc
	tap     logTap
	// Jobs inserted and worked since the start, for drain and the backlog
	// (the tally starts again with every phase).
	emitted, worked atomic.Int64
}

// tallier is a system that counts its deliveries itself, having no
// receiver.
type tallier interface {
	counts() *tally
}

func (r *riverRaw) counts() *tally { return &r.tally }

func (b *bench) newRiverRaw(ctx context.Context, backlog int) (*riverRaw, error) {
	pool, err := b.pgPool(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	r := &riverRaw{clk: b.clk, shape: b.shape, backlog: backlog, pool: pool, tap: newLogTap()}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &rawWorker{r: r}); err != nil {
		pool.Close()
		return nil, err
	}
	maxWorkers := b.opts.DurableWorkers
	if maxWorkers == 0 {
		maxWorkers = riverqueue.DefaultMaxWorkers
	}
	r.client, err = river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger:        slog.New(r.tap),
		Queues:        map[string]river.QueueConfig{rawQueue: {MaxWorkers: maxWorkers}},
		Workers:       workers,
		FetchCooldown: riverqueue.DefaultFetchCooldown,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	// River treats the end of Start's context as a hard stop: give it one
	// of its own, ended after Stop.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	if err := r.client.Start(rctx); err != nil {
		cancel()
		pool.Close()
		return nil, err
	}
	return r, nil
}

// blast inserts jobs in batches of rawBatch for d, keeping at most backlog
// jobs inserted and not yet worked.
func (r *riverRaw) blast(ctx context.Context, d time.Duration, clk clock) (int64, error) {
	deadline := time.Now().Add(d)
	params := make([]river.InsertManyParams, rawBatch)
	var seq, n int64
	for time.Now().Before(deadline) {
		for r.backlog > 0 && r.emitted.Load()+rawBatch-r.worked.Load() > int64(r.backlog) {
			if !time.Now().Before(deadline) {
				return n, nil
			}
			if err := ctx.Err(); err != nil {
				return n, err
			}
			time.Sleep(time.Millisecond)
		}
		for i := range params {
			params[i] = river.InsertManyParams{Args: rawArgs{Event: r.shape.event(event{seq: seq, emitNs: clk.now()})}}
			seq++
		}
		if _, err := r.client.InsertMany(ctx, params); err != nil {
			return n, err
		}
		r.emitted.Add(rawBatch)
		n += rawBatch
	}
	return n, nil
}

func (r *riverRaw) emit(ctx context.Context, ev event) error {
	if _, err := r.client.Insert(ctx, rawArgs{Event: r.shape.event(ev)}, nil); err != nil {
		return err
	}
	r.emitted.Add(1)
	return nil
}

// drain waits until every job inserted has been worked.
func (r *riverRaw) drain(ctx context.Context) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for r.worked.Load() < r.emitted.Load() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r *riverRaw) close(ctx context.Context) error {
	err := r.client.Stop(ctx)
	r.cancel()
	r.pool.Close()
	return err
}

func (r *riverRaw) diagnose(ctx context.Context) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d jobs inserted, %d worked", r.emitted.Load(), r.worked.Load())
	if n := r.bad.Load(); n > 0 {
		fmt.Fprintf(&b, ", %d with an unreadable emit time", n)
	}
	for _, st := range []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateDiscarded} {
		res, err := r.client.JobList(ctx, river.NewJobListParams().Kinds(rawKind).States(st).First(1))
		if err != nil {
			fmt.Fprintf(&b, "; list jobs: %v", err)
			break
		}
		if len(res.Jobs) > 0 {
			fmt.Fprintf(&b, "; some jobs %s", st)
		}
	}
	if logs := r.tap.String(); logs != "" {
		b.WriteString("; logs: " + logs)
	}
	return b.String()
}
