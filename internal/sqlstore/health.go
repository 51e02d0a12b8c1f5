package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/outhook/outhook"
)

// healthDest are the scan destinations of healthColumns.
func healthDest(h *outhook.SubscriptionHealth) []any {
	return []any{&h.ConsecutiveFailures, timeDest{&h.FailingSince}, timeDest{&h.LastFailureAt}, timeDest{&h.LastSuccessAt}}
}

// RecordDeliveryOutcome implements outhook.Store. A success to a healthy
// subscription whose LastSuccessAt is less than a minute old writes
// nothing (LastSuccessAt lags by up to a minute). Otherwise, in one
// transaction, it
// locks the subscription's row (a no-op update, which takes the write lock
// on both databases), reads its health, applies
// outhook.SubscriptionHealth.Record and writes the result: concurrent
// calls, from this process or others, are applied one after the other.
//
// The subscription version is not bumped (see the 0002 migration): this
// Store's cached copy of the subscription is dropped, and other Store
// values see the new health in ListSubscriptions at once, in
// GetSubscription at the next change of any subscription.
func (s *Store) RecordDeliveryOutcome(ctx context.Context, id string, succeeded bool, at time.Time) (before, after outhook.SubscriptionHealth, err error) {
	const op = "record delivery outcome"
	if !storable(id) {
		return before, after, notFound("subscription", id)
	}
	if err := s.checkTimes(fmt.Sprintf("subscription %q", id), at); err != nil {
		return before, after, err
	}
	if succeeded {
		// The common case, a success to a healthy subscription, changes
		// nothing but LastSuccessAt: it is read, without a lock or a
		// transaction, and written at most once per successWriteInterval.
		// Locking the subscription's row for every delivery would put
		// all of a subscription's deliveries in a line, a commit each
		// (BenchmarkDeliveries: 2,400-2,700 deliveries/s fell to 680).
		// Concurrent reads share a query (see grouped.go).
		r := &healthReq{id: id}
		if err := s.healths.Do(ctx, r); err != nil {
			return before, after, s.fail(ctx, op, err)
		}
		if !r.found {
			return before, after, notFound("subscription", id)
		}
		h := r.h
		if h.ConsecutiveFailures == 0 && h.FailingSince.IsZero() && !h.LastSuccessAt.IsZero() && at.Sub(h.LastSuccessAt) < successWriteInterval {
			return h, h, nil
		}
	}
	defer s.forget(id)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return before, after, s.fail(ctx, op, err)
	}
	defer func() { _ = tx.Rollback() }()
	err = tx.QueryRowContext(ctx, s.q.lockHealth, id).Scan(healthDest(&before)...)
	if errors.Is(err, sql.ErrNoRows) {
		return before, after, notFound("subscription", id)
	}
	if err != nil {
		return before, after, s.fail(ctx, op, err)
	}
	// Times as the database keeps them, so that before and after compare
	// alike whatever the precision of at.
	after = before.Record(succeeded, at.UTC().Truncate(time.Microsecond))
	if _, err := tx.ExecContext(ctx, s.q.setHealth, after.ConsecutiveFailures, s.d.nullTimeArg(after.FailingSince),
		s.d.nullTimeArg(after.LastFailureAt), s.d.nullTimeArg(after.LastSuccessAt), id); err != nil {
		return before, after, s.fail(ctx, op, err)
	}
	if err := tx.Commit(); err != nil {
		return before, after, s.fail(ctx, op, err)
	}
	return before, after, nil
}

// successWriteInterval is how stale a healthy subscription's
// LastSuccessAt may be: successes in between are not written.
const successWriteInterval = time.Minute

// forget drops this store's cached copy of a subscription.
func (s *Store) forget(id string) {
	s.mu.Lock()
	delete(s.subs, id)
	s.mu.Unlock()
}
