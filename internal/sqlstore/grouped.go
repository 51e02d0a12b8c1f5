package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/batch"
)

// The store's hot calls, made once or twice per delivery by every worker
// at once, are run in groups (see batch.Batcher): the client's routing creates
// deliveries and reads the subscription version, its delivery workers read
// a delivery and its subscription and record an attempt. Run alone, each
// call is a round trip, and each write a transaction whose commit waits for
// the disk; run together, a group costs one statement (Postgres) or one
// transaction (SQLite) whatever its size. Each call still returns only once
// its own data is written (or read), with its own error.
//
// What a group changes for the callers: nothing but the latency of a round
// trip more when the previous group is still running. A group never holds
// two updates of one delivery; a write group that fails is run again call by
// call, so that one call's error is not another's; reads begin after every
// call of their group was made, so a read never returns what was current
// before the call began.

const (
	// writeWindow bounds how long a write group lingers for the callers of
	// the previous one to come back (see batch.Batcher); a lone caller never
	// waits.
	writeWindow = time.Millisecond
	// readFlushers is how many read groups of one kind may run at once.
	readFlushers = 2
)

// newBatchers makes the store's batchers.
func (s *Store) newBatchers() {
	s.creates = newBatcher(s.runCreates, batch.Options[[][]any]{
		Size: func(rows [][]any) int { return len(rows) }, Window: writeWindow, MaxSize: rowsPerInsert,
	})
	s.updates = newBatcher(s.runUpdates, batch.Options[*updateReq]{
		Key: func(r *updateReq) string { return r.id }, Window: writeWindow, MaxSize: rowsPerInsert,
	})
	s.gets = newBatcher(s.runGets, batch.Options[*getDeliveryReq]{MaxSize: idsPerQuery, MaxFlushers: readFlushers})
	s.versions = newBatcher(s.runVersionReads, batch.Options[*int64]{MaxSize: 1 << 20})
	s.healths = newBatcher(s.runHealthReads, batch.Options[*healthReq]{MaxSize: idsPerQuery, MaxFlushers: readFlushers})
}

// healthReq is one read of a subscription's health (RecordDeliveryOutcome's
// check for a success that changes nothing) and its answer.
type healthReq struct {
	id    string
	h     outhook.SubscriptionHealth
	found bool
}

// runHealthReads reads the health of the subscriptions of items in one
// query: the deliveries finishing together are mostly of few subscriptions.
func (s *Store) runHealthReads(ctx context.Context, items []batchItem[*healthReq]) []error {
	errs := make([]error, len(items))
	ids := make([]any, 0, len(items))
	seen := map[string]bool{}
	for _, it := range items {
		if !seen[it.item.id] {
			seen[it.item.id] = true
			ids = append(ids, it.item.id)
		}
	}
	err := func() error {
		rows, err := s.db.QueryContext(ctx, s.d.rebind("SELECT id, "+healthColumns+" FROM outhook_subscriptions WHERE id IN ("+marks(len(ids))+")"), ids...)
		if err != nil {
			return err
		}
		defer rows.Close()
		got := map[string]outhook.SubscriptionHealth{}
		for rows.Next() {
			var id string
			var h outhook.SubscriptionHealth
			if err := rows.Scan(append([]any{&id}, healthDest(&h)...)...); err != nil {
				return err
			}
			got[id] = h
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, it := range items {
			it.item.h, it.item.found = got[it.item.id]
		}
		return nil
	}()
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
	}
	return errs
}

// byFirstArg orders bind rows by their first value, an ID.
func byFirstArg(a, b []any) int { return strings.Compare(a[0].(string), b[0].(string)) }

// runCreates inserts the deliveries of several CreateDeliveries calls (each
// a list of validated bind rows, sorted by ID) in one statement. Rows go in
// by ID, for the reason CreateDeliveries gives; the sort is stable, so that
// of two equal IDs in one call the first is still the one stored.
func (s *Store) runCreates(ctx context.Context, items []batchItem[[][]any]) []error {
	errs := make([]error, len(items))
	if len(items) == 1 {
		errs[0] = s.insertDeliveries(items[0].ctx, items[0].item)
		return errs
	}
	n := 0
	for _, it := range items {
		n += len(it.item)
	}
	rows := make([][]any, 0, n)
	for _, it := range items {
		rows = append(rows, it.item...)
	}
	slices.SortStableFunc(rows, byFirstArg)
	if s.insertDeliveries(ctx, rows) == nil {
		return errs
	}
	for i, it := range items {
		errs[i] = s.insertDeliveries(it.ctx, it.item)
	}
	return errs
}

// insertDeliveries inserts delivery rows (at most rowsPerInsert), leaving
// the IDs already stored as they are, in one statement.
func (s *Store) insertDeliveries(ctx context.Context, rows [][]any) error {
	var err error
	if s.d.kind == kindPostgres {
		_, err = s.db.ExecContext(ctx, s.q.insertDeliveries, columnArrays(rows, deliveryColumnKinds)...)
	} else {
		_, err = s.db.ExecContext(ctx, s.insertStatement("outhook_deliveries", deliveryColumns, deliveryColumnCount, len(rows),
			" ON CONFLICT (id) DO NOTHING"), slices.Concat(rows...)...)
	}
	if err != nil {
		return s.fail(ctx, "create deliveries", err)
	}
	return nil
}

// updateReq is one UpdateDelivery call.
type updateReq struct {
	id      string
	attempt *outhook.Attempt
	u       outhook.DeliveryUpdate
}

// runUpdates applies several UpdateDelivery calls, for distinct
// deliveries, together: on Postgres in one statement, on SQLite in one
// transaction.
func (s *Store) runUpdates(ctx context.Context, items []batchItem[*updateReq]) []error {
	errs := make([]error, len(items))
	if len(items) > 1 {
		var (
			found map[string]bool
			err   error
		)
		if s.d.kind == kindPostgres {
			found, err = s.updateManyPostgres(ctx, items)
		} else {
			found, err = s.updateManyTx(ctx, items)
		}
		if err == nil {
			for i, it := range items {
				if !found[it.item.id] {
					errs[i] = notFound("delivery", it.item.id)
				}
			}
			return errs
		}
	}
	for i, it := range items {
		r := it.item
		errs[i] = s.updateDelivery(it.ctx, r.id, r.attempt, r.u)
	}
	return errs
}

// updateManyPostgres runs s.q.updateDeliveries: the rows of the updates,
// as arrays, are joined to the deliveries, and the attempts appended under
// the counts the UPDATE returns. It returns the IDs it updated.
func (s *Store) updateManyPostgres(ctx context.Context, items []batchItem[*updateReq]) (map[string]bool, error) {
	rows := make([][]any, len(items))
	for i, it := range items {
		r := it.item
		row := append(make([]any, 0, 8+attemptColumnCount-2), r.id, string(r.u.Status), s.d.nullTimeArg(r.u.NextAttemptAt),
			string(r.u.NextAttemptTrigger), text(r.u.LastError), text(r.u.ExternalID), s.d.timeArg(r.u.UpdatedAt), r.attempt != nil)
		if r.attempt != nil {
			row = append(row, s.attemptArgs(r.id, 0, r.attempt)[2:]...)
		} else {
			row = append(row, make([]any, attemptColumnCount-2)...)
		}
		rows[i] = row
	}
	// In ID order: the UPDATE then most likely locks the rows in that order,
	// as concurrent groups do, so that they wait rather than deadlock. (A
	// deadlock would only fail the group, which runs again call by call.)
	slices.SortFunc(rows, byFirstArg)
	dbRows, err := s.db.QueryContext(ctx, s.q.updateDeliveries, columnArrays(rows, updateColumnKinds)...)
	if err != nil {
		return nil, err
	}
	defer dbRows.Close()
	found := make(map[string]bool, len(items))
	for dbRows.Next() {
		var id string
		if err := dbRows.Scan(&id); err != nil {
			return nil, err
		}
		found[id] = true
	}
	return found, dbRows.Err()
}

// updateManyTx applies the updates one after the other in one transaction
// (SQLite: one commit, so one sync of the file, for all).
func (s *Store) updateManyTx(ctx context.Context, items []batchItem[*updateReq]) (map[string]bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback() }()
	found := make(map[string]bool, len(items))
	for _, it := range items {
		r := it.item
		added := 0
		if r.attempt != nil {
			added = 1
		}
		var seq int
		err := tx.QueryRowContext(ctx, s.q.updateDelivery, string(r.u.Status), s.d.nullTimeArg(r.u.NextAttemptAt),
			string(r.u.NextAttemptTrigger), text(r.u.LastError), text(r.u.ExternalID), s.d.timeArg(r.u.UpdatedAt), added, r.id).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found[r.id] = true
		if r.attempt != nil {
			if _, err := tx.ExecContext(ctx, s.insertStatement("outhook_attempts", attemptColumns, attemptColumnCount, 1, ""),
				s.attemptArgs(r.id, seq, r.attempt)...); err != nil {
				return nil, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return found, nil
}

// getDeliveryReq is one GetDelivery call and its answer.
type getDeliveryReq struct {
	id string
	d  *outhook.Delivery
}

// runGets answers several GetDelivery calls with one query for the
// deliveries and, when some have attempts, one for their attempts.
func (s *Store) runGets(ctx context.Context, items []batchItem[*getDeliveryReq]) []error {
	errs := make([]error, len(items))
	if len(items) > 1 {
		if byID, err := s.getMany(ctx, items); err == nil {
			var given map[string]bool
			for i, it := range items {
				d, ok := byID[it.item.id]
				if !ok {
					errs[i] = notFound("delivery", it.item.id)
					continue
				}
				if given[d.ID] { // asked twice: each caller gets its own
					d = cloneDelivery(d)
				} else if len(byID) < len(items) {
					if given == nil {
						given = map[string]bool{}
					}
					given[d.ID] = true
				}
				it.item.d = d
			}
			return errs
		}
	}
	for i, it := range items {
		it.item.d, errs[i] = s.getDelivery(it.ctx, it.item.id)
	}
	return errs
}

func (s *Store) getMany(ctx context.Context, items []batchItem[*getDeliveryReq]) (map[string]*outhook.Delivery, error) {
	ids := make([]string, 0, len(items))
	for _, it := range items {
		ids = append(ids, it.item.id)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var (
		rows *sql.Rows
		err  error
	)
	if s.d.kind == kindPostgres {
		rows, err = s.db.QueryContext(ctx, s.q.getDeliveries, ids)
	} else {
		args := make([]any, len(ids))
		for i, id := range ids {
			args[i] = id
		}
		rows, err = s.db.QueryContext(ctx, "SELECT "+deliveryColumns+" FROM outhook_deliveries WHERE id IN ("+marks(len(ids))+")", args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ds []*outhook.Delivery
	counts := map[string]int{}
	for rows.Next() {
		d, count, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
		if count > 0 {
			counts[d.ID] = count
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if err := s.attemptsOf(ctx, ds, counts); err != nil {
		return nil, err
	}
	byID := make(map[string]*outhook.Delivery, len(ds))
	for _, d := range ds {
		byID[d.ID] = d
	}
	return byID, nil
}

// cloneDelivery copies d, but its payload, which nobody modifies.
func cloneDelivery(d *outhook.Delivery) *outhook.Delivery {
	c := *d
	c.Attempts = slices.Clone(d.Attempts)
	return &c
}

// runVersionReads answers every waiting caller with one read of the
// subscription version, made after they all asked.
func (s *Store) runVersionReads(ctx context.Context, items []batchItem[*int64]) []error {
	var v int64
	err := s.db.QueryRowContext(ctx, s.q.readVersion).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil // no change was ever recorded
	}
	errs := make([]error, len(items))
	for i, it := range items {
		*it.item = v
		errs[i] = err
	}
	return errs
}

// colKind is the Postgres array type a column of bind rows is sent as.
type colKind int

const (
	colText     colKind = iota // string
	colNullText                // string or nil
	colTime                    // time.Time or nil (NULL)
	colInt                     // int or int64
	colBool                    // bool
	colBytes                   // []byte or nil
)

// deliveryColumnKinds are the kinds of deliveryArgs' values.
var deliveryColumnKinds = []colKind{colText, colText, colText, colText, colText, colText, colNullText,
	colTime, colTime, colTime, colTime, colText, colText, colText, colInt, colText}

// updateColumnKinds are the kinds of the rows of updateManyPostgres: the
// update (id, status, next_attempt_at, next_attempt_trigger, last_error,
// external_id, updated_at, has_attempt), then attemptArgs but the first
// two.
var updateColumnKinds = []colKind{colText, colText, colTime, colText, colText, colText, colTime, colBool,
	colInt, colText, colTime, colText, colInt, colText, colText, colText, colInt, colBytes, colText, colInt, colTime,
	colNullText, colNullText}

// columnArrays turns bind rows into one array per column, for statements
// that unnest them. A nil value stands for NULL, or for the zero value in
// columns that cannot be NULL (never read: the rows of updates without an
// attempt).
func columnArrays(rows [][]any, kinds []colKind) []any {
	out := make([]any, len(kinds))
	for c, k := range kinds {
		switch k {
		case colText:
			a := make([]string, len(rows))
			for i, r := range rows {
				a[i], _ = r[c].(string)
			}
			out[c] = a
		case colNullText:
			a := make([]*string, len(rows))
			for i, r := range rows {
				if v, ok := r[c].(string); ok {
					a[i] = &v
				}
			}
			out[c] = a
		case colTime:
			a := make([]*time.Time, len(rows))
			for i, r := range rows {
				if v, ok := r[c].(time.Time); ok {
					a[i] = &v
				}
			}
			out[c] = a
		case colInt:
			a := make([]int64, len(rows))
			for i, r := range rows {
				switch v := r[c].(type) {
				case int:
					a[i] = int64(v)
				case int64:
					a[i] = v
				}
			}
			out[c] = a
		case colBool:
			a := make([]bool, len(rows))
			for i, r := range rows {
				a[i], _ = r[c].(bool)
			}
			out[c] = a
		case colBytes:
			a := make([][]byte, len(rows))
			for i, r := range rows {
				a[i], _ = r[c].([]byte)
			}
			out[c] = a
		}
	}
	return out
}
