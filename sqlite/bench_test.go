package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/benchkit"
	"github.com/outhook/outhook/sqlite"
)

// BenchmarkDeliveries measures deliveries per second through a client on
// the SQLite queue, with the in-memory store and with the SQLite store, in
// one file opened with Open: 32 goroutines emit events one EmitHook at a
// time, each event (a payload of about 300 bytes) is routed to one
// subscription and delivered by a deliverer that only counts; the clock
// stops when the queue is idle. The queue and the store use their
// defaults. Besides deliveries/s, it reports the CPU of the process per
// delivery (go-µs/op): SQLite runs in it. The stmtcache=off rows open the
// database without Open's statement cache, to show what it saves.
func BenchmarkDeliveries(b *testing.B) {
	for _, store := range []string{"memory", "sqlite"} {
		b.Run("store="+store, func(b *testing.B) { benchDeliveries(b, store) })
		b.Run("store="+store+"/stmtcache=off", func(b *testing.B) {
			b.Cleanup(sqlite.SetStmtCacheOff())
			benchDeliveries(b, store)
		})
	}
}

func benchDeliveries(b *testing.B, storeKind string) {
	db, err := sqlite.Open(tempPath(b))
	require.NoError(b, err)
	b.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	require.NoError(b, sqlite.Migrate(ctx, db))
	q, err := sqlite.NewQueue(db, &sqlite.QueueConfig{Logger: queueTestLogger()})
	require.NoError(b, err)
	var store outhook.Store
	if storeKind == "sqlite" {
		s, err := sqlite.NewStore(ctx, db, nil)
		require.NoError(b, err)
		store = s
	}
	start, stop := measureCPU(b, "deliveries/s")
	benchkit.Deliveries(b, q, store, start, stop)
}

// measureCPU returns a benchmark's start and stop functions: the clock,
// and the CPU of the process (SQLite runs in it) per operation, go-µs/op,
// with the rate as unit.
func measureCPU(b *testing.B, unit string) (start, stop func()) {
	var cpu time.Duration
	return func() {
			cpu = benchkit.ProcessCPU()
			b.ResetTimer()
		}, func() {
			b.StopTimer()
			cpu = benchkit.ProcessCPU() - cpu
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "go-µs/op")
		}
}
