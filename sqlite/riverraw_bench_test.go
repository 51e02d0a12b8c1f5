package sqlite_test

import (
	"context"
	"testing"

	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/internal/benchkit"
	"github.com/outhook/outhook/sqlite"
)

// BenchmarkRiverRaw is River alone on SQLite, the yardstick of
// BenchmarkDeliveries (see benchkit.RiverRaw), in a file opened with Open.
func BenchmarkRiverRaw(b *testing.B) {
	db, err := sqlite.Open(tempPath(b))
	require.NoError(b, err)
	b.Cleanup(func() { _ = db.Close() })
	require.NoError(b, sqlite.MigrateQueue(context.Background(), db))
	start, stop := measureCPU(b, "jobs/s")
	benchkit.RiverRaw(b, riversqlite.New(db), queueTestLogger(), start, stop)
}
