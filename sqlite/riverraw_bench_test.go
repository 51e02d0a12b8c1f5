package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/riverqueue"
	"github.com/outhook/outhook/sqlite"
)

type rawArgs struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
}

func (rawArgs) Kind() string { return "outhook_bench_raw" }

type rawWorker struct {
	river.WorkerDefaults[rawArgs]
	done atomic.Int64
	n    int64
	all  chan struct{}
}

func (w *rawWorker) Work(context.Context, *river.Job[rawArgs]) error {
	if w.done.Add(1) == w.n {
		close(w.all)
	}
	return nil
}

// BenchmarkRiverRaw is River alone on SQLite, the yardstick of
// BenchmarkDeliveries: jobs inserted with InsertMany in batches of 1,000 and
// worked by a no-op worker, with the queue's default workers and fetch
// cooldown, in a file opened with Open.
func BenchmarkRiverRaw(b *testing.B) {
	db, err := sqlite.Open(tempPath(b))
	require.NoError(b, err)
	b.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	require.NoError(b, sqlite.MigrateQueue(ctx, db))
	w := &rawWorker{n: int64(b.N), all: make(chan struct{})}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	client, err := river.NewClient[*sql.Tx](riversqlite.New(db), &river.Config{
		Logger:        queueTestLogger(),
		Workers:       workers,
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: riverqueue.DefaultMaxWorkers}},
		FetchCooldown: riverqueue.DefaultFetchCooldown,
	})
	require.NoError(b, err)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	require.NoError(b, client.Start(rctx))
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_ = client.Stop(sctx)
	}()
	pad := strings.Repeat("x", 270)
	cpu := processCPU()
	b.ResetTimer()
	params := make([]river.InsertManyParams, 0, 1000)
	for i := range b.N {
		params = append(params, river.InsertManyParams{Args: rawArgs{ID: fmt.Sprintf("inc-%08d", i), Severity: pad}})
		if len(params) == cap(params) || i == b.N-1 {
			_, err := client.InsertMany(ctx, params)
			require.NoError(b, err)
			params = params[:0]
		}
	}
	select {
	case <-w.all:
	case <-time.After(10 * time.Minute):
		b.Fatal("river-raw: timed out")
	}
	b.StopTimer()
	cpu = processCPU() - cpu
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "go-µs/op")
}
