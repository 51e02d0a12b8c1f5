package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/internal/lifecycletest"
	"github.com/outhook/outhook/sqlite"
)

// TestStopUnderLoad: Stop during heavy load returns within its deadline
// with nothing in progress, and a node started afterwards on the same file
// makes every delivery left, none twice (issue 7, item 7).
func TestStopUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stop.db")
	db, err := sqlite.Open(path)
	require.NoError(t, err)
	require.NoError(t, sqlite.Migrate(context.Background(), db))
	require.NoError(t, db.Close())
	lifecycletest.StopUnderLoad(t, lifecycletest.Options{NewParts: proofParts(path), Durable: true})
}
