package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/outhook/outhook"
)

const (
	deliveryColumns = "id, message_id, event_id, subscription_id, deliverer_id, status, payload, occurred_at, created_at, " +
		"updated_at, next_attempt_at, next_attempt_trigger, external_id, last_error, attempt_count, ordering_key"
	deliveryColumnCount = 16
	attemptColumns      = "delivery_id, seq, number, triggered_by, started_at, deliverer_id, duration_ns, outcome, error, " +
		"error_class, status_code, response, external_id, retry_after_ns, next_attempt_at, request_headers, response_headers"
	attemptColumnCount = 17

	// Rows per multi-row INSERT: well under the bind limits of both
	// databases (32,766 for SQLite, 65,535 for Postgres).
	rowsPerInsert = 500
	// IDs per IN list when loading the attempts of many deliveries.
	idsPerQuery = 500
)

// deliveryArgs are the bind values of a new delivery's columns, in
// deliveryColumns order.
func (s *Store) deliveryArgs(d *outhook.Delivery) ([]any, error) {
	if d == nil {
		return nil, s.badInput("delivery is nil")
	}
	if err := s.checkKey("delivery ID", d.ID, true); err != nil {
		return nil, err
	}
	for _, k := range []struct{ what, v string }{
		{"message ID", d.MessageID}, {"event ID", d.EventID}, {"subscription ID", d.SubscriptionID},
		{"deliverer ID", d.DelivererID}, {"status", string(d.Status)}, {"next attempt trigger", string(d.NextAttemptTrigger)},
	} {
		if err := s.checkKey(fmt.Sprintf("delivery %q: %s", d.ID, k.what), k.v, false); err != nil {
			return nil, err
		}
	}
	if err := s.checkTimes(fmt.Sprintf("delivery %q", d.ID), d.OccurredAt, d.CreatedAt, d.UpdatedAt, d.NextAttemptAt); err != nil {
		return nil, err
	}
	payload, err := s.jsonArg(fmt.Sprintf("delivery %q: payload", d.ID), d.Payload)
	if err != nil {
		return nil, err
	}
	for i := range d.Attempts {
		if err := s.checkAttempt(d.ID, &d.Attempts[i]); err != nil {
			return nil, err
		}
	}
	return []any{d.ID, d.MessageID, d.EventID, d.SubscriptionID, d.DelivererID, string(d.Status), payload,
		s.d.timeArg(d.OccurredAt), s.d.timeArg(d.CreatedAt), s.d.timeArg(d.UpdatedAt), s.d.nullTimeArg(d.NextAttemptAt),
		string(d.NextAttemptTrigger), text(d.ExternalID), text(d.LastError), len(d.Attempts), text(d.OrderingKey)}, nil
}

func (s *Store) checkAttempt(deliveryID string, a *outhook.Attempt) error {
	if err := s.checkTimes(fmt.Sprintf("delivery %q: attempt %d", deliveryID, a.Number), a.StartedAt, a.NextAttemptAt); err != nil {
		return err
	}
	for _, k := range []struct{ what, v string }{
		{"trigger", string(a.Trigger)}, {"deliverer ID", a.DelivererID}, {"outcome", string(a.Outcome)}, {"error class", a.ErrorClass},
	} {
		if err := s.checkKey(fmt.Sprintf("delivery %q: attempt %d: %s", deliveryID, a.Number, k.what), k.v, false); err != nil {
			return err
		}
	}
	return nil
}

// attemptArgs are the bind values of an attempt's columns, in
// attemptColumns order; seq is its place in the delivery's log, from 1.
func (s *Store) attemptArgs(deliveryID string, seq int, a *outhook.Attempt) []any {
	// The response is an excerpt of whatever the destination answered,
	// kept byte for byte (bytea, BLOB): NUL bytes and invalid UTF-8 too.
	var response any
	if a.Response != "" {
		response = []byte(a.Response)
	}
	return []any{deliveryID, seq, a.Number, string(a.Trigger), s.d.timeArg(a.StartedAt), a.DelivererID, int64(a.Duration),
		string(a.Outcome), text(a.Error), a.ErrorClass, a.StatusCode, response, text(a.ExternalID),
		int64(a.RetryAfter), s.d.nullTimeArg(a.NextAttemptAt), headersArg(a.RequestHeaders), headersArg(a.ResponseHeaders)}
}

// headersArg encodes an attempt's headers as a JSON object of arrays of
// strings: nil (NULL) for a nil map, "{}" for an empty one. (Invalid UTF-8
// in a header becomes U+FFFD, as encoding/json writes it.)
func headersArg(h map[string][]string) any {
	if h == nil {
		return nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil // unreachable: strings always encode
	}
	return string(b)
}

// scanHeaders decodes a column that headersArg wrote.
func scanHeaders(col sql.NullString) (map[string][]string, error) {
	if !col.Valid {
		return nil, nil
	}
	h := map[string][]string{}
	if err := json.Unmarshal([]byte(col.String), &h); err != nil {
		return nil, fmt.Errorf("attempt headers: %w", err)
	}
	return h, nil
}

// insertStatement returns a multi-row INSERT of n rows of cols values.
func (s *Store) insertStatement(table, columns string, cols, n int, suffix string) string {
	var b strings.Builder
	row := "(" + marks(cols) + ")"
	b.Grow(len(table) + len(columns) + n*(len(row)+2) + len(suffix) + 32)
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	b.WriteString(columns)
	b.WriteString(") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	b.WriteString(suffix)
	return s.d.rebind(b.String())
}

// CreateDeliveries implements outhook.Store: all or none, and a delivery
// whose ID is stored already is left as it is (ON CONFLICT DO NOTHING).
// Attempts a new delivery carries are stored with it.
func (s *Store) CreateDeliveries(ctx context.Context, ds []*outhook.Delivery) error {
	const op = "create deliveries"
	if len(ds) == 0 {
		return nil
	}
	args := make([][]any, len(ds))
	withAttempts := false
	for i, d := range ds {
		var err error
		if args[i], err = s.deliveryArgs(d); err != nil {
			return err
		}
		withAttempts = withAttempts || len(d.Attempts) > 0
	}
	// Rows go in by ID: two nodes routing one event insert the same rows,
	// and Postgres makes the second wait for each row the first holds;
	// taking them in one order keeps those waits from deadlocking. The sort
	// is stable: of two equal IDs in ds, the first is the one stored.
	slices.SortStableFunc(args, byFirstArg)
	if len(ds) <= rowsPerInsert && !withAttempts {
		// One statement is atomic on its own: no transaction to begin and
		// commit, which on Postgres saves two round trips. Concurrent calls
		// share it (see batch.Batcher).
		return s.creates.Do(ctx, args)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(ctx, op, err)
	}
	defer func() { _ = tx.Rollback() }()
	inserted := map[string]bool{}
	for lo := 0; lo < len(ds); lo += rowsPerInsert {
		hi := min(lo+rowsPerInsert, len(ds))
		stmt := s.insertStatement("outhook_deliveries", deliveryColumns, deliveryColumnCount, hi-lo, " ON CONFLICT (id) DO NOTHING")
		if !withAttempts {
			if _, err := tx.ExecContext(ctx, stmt, slices.Concat(args[lo:hi]...)...); err != nil {
				return s.fail(ctx, op, err)
			}
			continue
		}
		// Only the deliveries inserted now get the attempts they carry.
		if err := func() error {
			rows, err := tx.QueryContext(ctx, stmt+" RETURNING id", slices.Concat(args[lo:hi]...)...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				inserted[id] = true
			}
			return rows.Err()
		}(); err != nil {
			return s.fail(ctx, op, err)
		}
	}
	var attempts [][]any
	for _, d := range ds {
		if !inserted[d.ID] {
			continue
		}
		delete(inserted, d.ID) // a second delivery with the same ID in ds is not the stored one
		for i := range d.Attempts {
			attempts = append(attempts, s.attemptArgs(d.ID, i+1, &d.Attempts[i]))
		}
	}
	for rows := range slices.Chunk(attempts, rowsPerInsert) {
		if _, err := tx.ExecContext(ctx, s.insertStatement("outhook_attempts", attemptColumns, attemptColumnCount, len(rows), ""),
			slices.Concat(rows...)...); err != nil {
			return s.fail(ctx, op, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
}

// scanDelivery reads a row of deliveryColumns; count is its attempt_count.
func scanDelivery(row scanner) (d *outhook.Delivery, count int, err error) {
	d = new(outhook.Delivery)
	var payload []byte
	err = row.Scan(&d.ID, &d.MessageID, &d.EventID, &d.SubscriptionID, &d.DelivererID, &d.Status, &payload,
		timeDest{&d.OccurredAt}, timeDest{&d.CreatedAt}, timeDest{&d.UpdatedAt}, timeDest{&d.NextAttemptAt},
		&d.NextAttemptTrigger, &d.ExternalID, &d.LastError, &count, &d.OrderingKey)
	if err != nil {
		return nil, 0, err
	}
	if payload != nil {
		d.Payload = payload
	}
	return d, count, nil
}

// scanAttempt reads a row of attemptColumns.
func scanAttempt(row scanner) (deliveryID string, seq int, a outhook.Attempt, err error) {
	var (
		duration, retryAfter   int64
		response               []byte
		reqHeaders, resHeaders sql.NullString
	)
	err = row.Scan(&deliveryID, &seq, &a.Number, &a.Trigger, timeDest{&a.StartedAt}, &a.DelivererID, &duration,
		&a.Outcome, &a.Error, &a.ErrorClass, &a.StatusCode, &response, &a.ExternalID, &retryAfter, timeDest{&a.NextAttemptAt},
		&reqHeaders, &resHeaders)
	a.Duration, a.RetryAfter, a.Response = time.Duration(duration), time.Duration(retryAfter), string(response)
	if err == nil {
		if a.RequestHeaders, err = scanHeaders(reqHeaders); err == nil {
			a.ResponseHeaders, err = scanHeaders(resHeaders)
		}
	}
	return deliveryID, seq, a, err
}

// attempts loads the first count attempts of a delivery. Attempts are only
// ever appended, in the transaction that raises attempt_count, so the
// attempts up to the count read with the delivery are the ones that
// belong to that version of it, without a transaction around both reads.
func (s *Store) attempts(ctx context.Context, d *outhook.Delivery, count int) error {
	if count == 0 {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, s.q.deliveryAttempts, d.ID, count)
	if err != nil {
		return err
	}
	defer rows.Close()
	d.Attempts = make([]outhook.Attempt, 0, count)
	for rows.Next() {
		_, _, a, err := scanAttempt(rows)
		if err != nil {
			return err
		}
		d.Attempts = append(d.Attempts, a)
	}
	return rows.Err()
}

// GetDelivery implements outhook.Store. Concurrent calls share their
// queries (see batch.Batcher).
func (s *Store) GetDelivery(ctx context.Context, id string) (*outhook.Delivery, error) {
	if !storable(id) {
		return nil, notFound("delivery", id)
	}
	r := &getDeliveryReq{id: id}
	if err := s.gets.Do(ctx, r); err != nil {
		return nil, err
	}
	return r.d, nil
}

// getDelivery is GetDelivery on its own.
func (s *Store) getDelivery(ctx context.Context, id string) (*outhook.Delivery, error) {
	const op = "get delivery"
	d, count, err := scanDelivery(s.db.QueryRowContext(ctx, s.q.getDelivery, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("delivery", id)
	}
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	if err := s.attempts(ctx, d, count); err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return d, nil
}

// UpdateDelivery implements outhook.Store: the attempt is appended and the
// row updated in one transaction.
func (s *Store) UpdateDelivery(ctx context.Context, id string, attempt *outhook.Attempt, u outhook.DeliveryUpdate) error {
	const op = "update delivery"
	if !storable(id) {
		return notFound("delivery", id)
	}
	for _, k := range []struct{ what, v string }{{"status", string(u.Status)}, {"next attempt trigger", string(u.NextAttemptTrigger)}} {
		if err := s.checkKey(fmt.Sprintf("delivery %q: %s", id, k.what), k.v, false); err != nil {
			return err
		}
	}
	if err := s.checkTimes(fmt.Sprintf("delivery %q", id), u.NextAttemptAt, u.UpdatedAt); err != nil {
		return err
	}
	if attempt != nil {
		if err := s.checkAttempt(id, attempt); err != nil {
			return err
		}
	}
	// Concurrent calls share a transaction (see batch.Batcher); calls for one
	// delivery never share one, so that each applies as one step.
	return s.updates.Do(ctx, &updateReq{id: id, attempt: attempt, u: u})
}

// updateDelivery is UpdateDelivery on its own, after validation.
func (s *Store) updateDelivery(ctx context.Context, id string, attempt *outhook.Attempt, u outhook.DeliveryUpdate) error {
	const op = "update delivery"
	added := 0
	if attempt != nil {
		added = 1
	}
	args := []any{string(u.Status), s.d.nullTimeArg(u.NextAttemptAt), string(u.NextAttemptTrigger), text(u.LastError),
		text(u.ExternalID), s.d.timeArg(u.UpdatedAt), added, id}
	if attempt == nil {
		// One statement: no transaction needed.
		var count int
		err := s.db.QueryRowContext(ctx, s.q.updateDelivery, args...).Scan(&count)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("delivery", id)
		}
		if err != nil {
			return s.fail(ctx, op, err)
		}
		return nil
	}
	if s.q.updateDeliveryWithAttempt != "" {
		// The update's values but the count increment, then the
		// attempt's but delivery_id and seq, which the statement sets.
		all := append(args[:6:6], id)
		all = append(all, s.attemptArgs(id, 0, attempt)[2:]...)
		res, err := s.db.ExecContext(ctx, s.q.updateDeliveryWithAttempt, all...)
		if err != nil {
			return s.fail(ctx, op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.fail(ctx, op, err)
		} else if n == 0 {
			return notFound("delivery", id)
		}
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(ctx, op, err)
	}
	defer func() { _ = tx.Rollback() }()
	// The UPDATE comes first: it locks the row (Postgres) or takes the
	// write lock (SQLite), so concurrent updates of one delivery number
	// their attempts one after the other.
	var seq int
	err = tx.QueryRowContext(ctx, s.q.updateDelivery, args...).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("delivery", id)
	}
	if err != nil {
		return s.fail(ctx, op, err)
	}
	if _, err := tx.ExecContext(ctx, s.insertStatement("outhook_attempts", attemptColumns, attemptColumnCount, 1, ""),
		s.attemptArgs(id, seq, attempt)...); err != nil {
		return s.fail(ctx, op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
}

// ReopenDelivery implements outhook.Store.
func (s *Store) ReopenDelivery(ctx context.Context, id string, at time.Time) (*outhook.Delivery, error) {
	return s.reopen(ctx, id, at, -1)
}

// ReopenFailedDelivery implements outhook.FailedReopener: one conditional
// UPDATE, so that of concurrent callers one reopens the delivery.
func (s *Store) ReopenFailedDelivery(ctx context.Context, id string, attempts int, at time.Time) (*outhook.Delivery, error) {
	return s.reopen(ctx, id, at, attempts)
}

// reopen reopens a finished delivery; with attempts at 0 or more, only a
// failed one with that many attempts.
func (s *Store) reopen(ctx context.Context, id string, at time.Time, attempts int) (*outhook.Delivery, error) {
	const op = "reopen delivery"
	if !storable(id) {
		return nil, notFound("delivery", id)
	}
	if err := s.checkTimes(fmt.Sprintf("delivery %q", id), at); err != nil {
		return nil, err
	}
	query, args := s.q.reopenDelivery, []any{s.d.timeArg(at), s.d.timeArg(at), id}
	if attempts >= 0 {
		query, args = s.q.reopenFailed, append(args, attempts)
	}
	d, count, err := scanDelivery(s.db.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		var (
			status string
			n      int
		)
		err = s.db.QueryRowContext(ctx, s.q.deliveryStatus, id).Scan(&status, &n)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, notFound("delivery", id)
		}
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		if status != string(outhook.DeliveryPending) && attempts >= 0 {
			return nil, fmt.Errorf("%w: %q is %s with %d attempts", outhook.ErrDeliveryChanged, id, status, n)
		}
		return nil, fmt.Errorf("%w: %q", outhook.ErrDeliveryPending, id)
	}
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	if err := s.attempts(ctx, d, count); err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return d, nil
}

// ListDeliveries implements outhook.Store: the deliveries that match q,
// newest first by (created_at, id), with their attempts. Times in q are
// compared at the microsecond the store keeps.
func (s *Store) ListDeliveries(ctx context.Context, q outhook.DeliveryQuery) ([]*outhook.Delivery, error) {
	const op = "list deliveries"
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	var (
		where []string
		args  []any
	)
	for _, f := range []struct{ col, v string }{
		{"subscription_id", q.SubscriptionID}, {"event_id", q.EventID}, {"message_id", q.MessageID}, {"status", string(q.Status)},
	} {
		if !storable(f.v) {
			return nil, nil // no stored delivery has it
		}
		if f.v != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	where, args = s.createdBetween(where, args, q.Since, q.Until)
	if !q.After.IsZero() {
		// The keyset condition, as a row comparison (Postgres; SQLite from
		// 3.15), so that the (created_at, id) indexes serve it.
		where = append(where, "(created_at, id) < (?, ?)")
		args = append(args, s.d.timeArg(q.After.CreatedAt), q.After.ID)
	}
	stmt := "SELECT " + deliveryColumns + " FROM outhook_deliveries"
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	stmt += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, limit)

	out, counts, err := func() ([]*outhook.Delivery, map[string]int, error) {
		rows, err := s.db.QueryContext(ctx, s.d.rebind(stmt), args...)
		if err != nil {
			return nil, nil, err
		}
		defer rows.Close()
		var out []*outhook.Delivery
		counts := map[string]int{}
		for rows.Next() {
			d, count, err := scanDelivery(rows)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, d)
			if count > 0 {
				counts[d.ID] = count
			}
		}
		return out, counts, rows.Err()
	}()
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	if err := s.attemptsOf(ctx, out, counts); err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return out, nil
}

// attemptsOf loads the attempts of several deliveries, up to each one's
// count (see attempts).
func (s *Store) attemptsOf(ctx context.Context, ds []*outhook.Delivery, counts map[string]int) error {
	if len(counts) == 0 {
		return nil
	}
	byID := make(map[string]*outhook.Delivery, len(counts))
	ids := make([]any, 0, len(counts))
	for _, d := range ds {
		if n := counts[d.ID]; n > 0 {
			byID[d.ID] = d
			ids = append(ids, d.ID)
			d.Attempts = make([]outhook.Attempt, 0, n)
		}
	}
	for chunk := range slices.Chunk(ids, idsPerQuery) {
		stmt := s.d.rebind("SELECT " + attemptColumns + " FROM outhook_attempts WHERE delivery_id IN (" + marks(len(chunk)) + ") ORDER BY delivery_id, seq")
		if err := func() error {
			rows, err := s.db.QueryContext(ctx, stmt, chunk...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				id, seq, a, err := scanAttempt(rows)
				if err != nil {
					return err
				}
				if d := byID[id]; d != nil && seq <= counts[id] {
					d.Attempts = append(d.Attempts, a)
				}
			}
			return rows.Err()
		}(); err != nil {
			return err
		}
	}
	return nil
}

// FirstPending implements outhook.Store, through the partial index
// outhook_deliveries_ordering.
func (s *Store) FirstPending(ctx context.Context, subscriptionID, orderingKey string) (*outhook.PendingHead, error) {
	const op = "first pending delivery"
	if !storable(subscriptionID) || !storable(orderingKey) {
		return nil, nil // no stored delivery has it
	}
	var (
		h    outhook.PendingHead
		next time.Time
	)
	err := s.db.QueryRowContext(ctx, s.q.firstPending, subscriptionID, orderingKey).Scan(&h.ID, timeDest{&next})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, s.fail(ctx, op, err)
	}
	h.NextAttemptAt = next
	return &h, nil
}

// createdBetween adds the conditions Since <= created_at < Until of a
// delivery query to where and args; a zero time leaves its side open.
func (s *Store) createdBetween(where []string, args []any, since, until time.Time) ([]string, []any) {
	if !since.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, s.d.timeArg(since))
	}
	if !until.IsZero() {
		where = append(where, "created_at < ?")
		args = append(args, s.d.timeArg(until))
	}
	return where, args
}
