package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// Migrate creates or updates every table outhook keeps in Postgres: River's
// (MigrateQueue) and the store's (MigrateStore), in the first schema of the
// pool's search_path. It is idempotent; run it at deployment, or at start-up
// before NewQueue's Start and NewStore.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if err := MigrateQueue(ctx, pool); err != nil {
		return err
	}
	return MigrateStore(ctx, pool)
}

// MigrateQueue runs River's migrations up (rivermigrate), creating or
// updating River's tables (river_job, river_queue, river_leader, ...) in the
// first schema of the pool's search_path. It is idempotent; River runs each
// migration in a transaction. Use it when the application manages River's
// schema itself (River's CLI, or River's migrations in its own tool, do the
// same).
func MigrateQueue(ctx context.Context, pool *pgxpool.Pool) error {
	if pool == nil {
		return errors.New("outhook: postgres: MigrateQueue: the pool is nil")
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("outhook: postgres: River migrations: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return ctxErr
		}
		return fmt.Errorf("outhook: postgres: River migrations: %w", err)
	}
	return nil
}
