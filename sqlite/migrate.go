package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// Migrate creates or updates every table outhook keeps in the SQLite file:
// River's (MigrateQueue) and the store's (MigrateStore). It is idempotent;
// run it at start-up, before the queue's Start and NewStore.
func Migrate(ctx context.Context, db *sql.DB) error {
	if err := MigrateQueue(ctx, db); err != nil {
		return err
	}
	return MigrateStore(ctx, db)
}

// MigrateQueue runs River's migrations up (rivermigrate with River's SQLite
// driver), creating or updating River's tables (river_job, river_queue,
// ...). It is idempotent.
func MigrateQueue(ctx context.Context, db *sql.DB) error {
	if db == nil {
		return errors.New("outhook: sqlite: MigrateQueue: the database is nil")
	}
	m, err := rivermigrate.New(riversqlite.New(db), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("outhook: sqlite: River migrations: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return ctxErr
		}
		return fmt.Errorf("outhook: sqlite: River migrations: %w", err)
	}
	return nil
}
