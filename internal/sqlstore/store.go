// Package sqlstore is outhook's Store over database/sql, for Postgres and
// SQLite: subscriptions with an index of their event selectors, deliveries
// and the log of their attempts. Packages postgres and sqlite wrap it; the
// SQL that differs between the two databases lives in a Dialect and in the
// migrations of each (migrations/<dialect>/*.sql).
//
// # Tables
//
//   - outhook_subscriptions: one row per subscription, its selectors (a JSON
//     array), configuration (JSON, byte for byte) and filter (JSON);
//   - outhook_subscription_events: one row per (selector, subscription), the
//     index MatchSubscriptions reads: exact event IDs by primary key,
//     patterns loaded together and matched in Go;
//   - outhook_deliveries: one row per delivery, indexed for each filter of
//     ListDeliveries followed by (created_at, id);
//   - outhook_attempts: one row per attempt, keyed (delivery_id, seq);
//   - outhook_meta: the subscription version, bumped in the transaction of
//     every subscription change;
//   - outhook_migrations: the applied migrations (see Migrate).
//
// # Routing cache
//
// MatchSubscriptions keeps the match set of every event ID it answered, and
// the subscriptions with patterns, in memory, tagged with the subscription
// version it read; GetSubscription keeps the subscriptions it read the same
// way. Before answering from the cache they read the version again (one
// primary-key read of outhook_meta); when another node, or another Store
// value, changed a subscription since, the version differs and the cache is
// dropped. Config.MaxSubscriptionStaleness trades MatchSubscriptions' read
// for a bounded delay (GetSubscription always reads).
//
// # Groups of calls
//
// The calls the client makes for every event and every delivery
// (CreateDeliveries, GetDelivery, UpdateDelivery, and the version reads of
// MatchSubscriptions and GetSubscription) are run in groups when they come
// together: a group costs one statement or one transaction, whatever its
// size, where each call alone would cost a round trip, and each write a
// commit that waits for the disk. Each call still returns once its own
// write is committed (or its read made after the call began), with its own
// error. See grouped.go.
package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/batch"
	"github.com/outhook/outhook/internal/ident"
)

// Config configures New. The zero value means the defaults.
type Config struct {
	// MaxSubscriptionStaleness is how long MatchSubscriptions may answer
	// from its cache without checking whether the subscriptions were
	// changed elsewhere (by another node, or another Store value on the
	// same database). Zero, the default, checks on every call: one small
	// query, a primary-key read of outhook_meta, per routed event. Changes
	// made through this Store value are seen at once whatever the setting.
	MaxSubscriptionStaleness time.Duration
}

// maxKeyLen bounds IDs and selectors: the client allows 255 bytes; the
// bound only keeps absurd keys out of the indexes.
const maxKeyLen = 1024

// maxCachedEvents bounds the routing cache: past it, the cache starts over.
// Routing asks only about registered events, so this is rarely reached.
const maxCachedEvents = 10_000

// Store is an outhook.Store in a Postgres or SQLite database. It is safe for
// concurrent use, and several Store values, in one process or many, may
// share a database.
type Store struct {
	db        *sql.DB
	d         Dialect
	staleness time.Duration
	q         queries

	// Groups of concurrent calls (see grouped.go).
	creates  *batch.Batcher[[][]any] // CreateDeliveries: validated rows, sorted by ID
	updates  *batch.Batcher[*updateReq]
	gets     *batch.Batcher[*getDeliveryReq]
	versions *batch.Batcher[*int64] // reads of the subscription version
	healths  *batch.Batcher[*healthReq]

	// The routing cache, guarded by mu.
	mu         sync.RWMutex
	version    int64     // subscription version the cache belongs to; -1: none
	checkedAt  time.Time // when version was last read from the database
	matches    map[string][]*outhook.Subscription
	patterns   []patternSub // the subscriptions with patterns, once loaded
	patternsOK bool
	subs       map[string]*outhook.Subscription // GetSubscription's answers; nil: not found
}

var _ outhook.Store = (*Store)(nil)

// patternSub is one pattern selector of a subscription.
type patternSub struct {
	pattern string
	sub     *outhook.Subscription
}

// New returns a store on db, after checking (Check) that its tables are
// migrated. A nil cfg means defaults.
func New(ctx context.Context, db *sql.DB, d Dialect, cfg *Config) (*Store, error) {
	if err := d.valid(); err != nil {
		return nil, err
	}
	if db == nil {
		return nil, fmt.Errorf("outhook: %s: new store: the database is nil", d.Name)
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.MaxSubscriptionStaleness < 0 {
		return nil, fmt.Errorf("outhook: %s: new store: MaxSubscriptionStaleness is negative (%s)", d.Name, c.MaxSubscriptionStaleness)
	}
	if err := Check(ctx, db, d); err != nil {
		return nil, err
	}
	s := &Store{
		db:        db,
		d:         d,
		staleness: c.MaxSubscriptionStaleness,
		q:         newQueries(d),
		version:   -1,
		matches:   map[string][]*outhook.Subscription{},
		subs:      map[string]*outhook.Subscription{},
	}
	s.newBatchers()
	return s, nil
}

// fail names the dialect and the operation in a database error; context
// errors are returned as they are.
func (s *Store) fail(ctx context.Context, op string, err error) error {
	return s.d.wrap(ctx, op, err)
}

func notFound(kind, id string) error {
	return fmt.Errorf("%w: %s %q", outhook.ErrNotFound, kind, id)
}

// badInput reports a value the store cannot keep.
func (s *Store) badInput(format string, args ...any) error {
	return fmt.Errorf("outhook: %s: %s", s.d.Name, fmt.Sprintf(format, args...))
}

// storable reports whether v can be stored as text: an ID that is not was
// never stored, so looking it up finds nothing.
func storable(v string) bool {
	return utf8.ValidString(v) && strings.IndexByte(v, 0) < 0
}

// checkKey refuses identifiers the databases cannot store exactly: empty
// when required, not UTF-8, or with NUL bytes (Postgres text has neither).
func (s *Store) checkKey(what, v string, required bool) error {
	switch {
	case v == "" && required:
		return s.badInput("%s is empty", what)
	case !utf8.ValidString(v):
		return s.badInput("%s %q is not valid UTF-8", what, v)
	case strings.IndexByte(v, 0) >= 0:
		return s.badInput("%s %q contains a NUL byte", what, v)
	case len(v) > maxKeyLen:
		return s.badInput("%s %.40q... is longer than %d bytes", what, v, maxKeyLen)
	}
	return nil
}

// text makes free text (errors, responses, names) storable in both
// databases: invalid UTF-8 and NUL bytes, which Postgres text cannot hold,
// become U+FFFD.
func text(v string) string {
	if storable(v) {
		return v
	}
	return strings.ReplaceAll(strings.ToValidUTF8(v, "\uFFFD"), "\x00", "\uFFFD")
}

// checkTimes refuses times the databases cannot keep: outside the years 1
// to 9999, in UTC. (timeArg refuses them too, as a backstop, with a less
// readable error.)
func (s *Store) checkTimes(what string, ts ...time.Time) error {
	for _, t := range ts {
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return s.badInput("%s: time %s is outside the years 1 to 9999 that outhook stores", what, t.Format(time.RFC3339Nano))
		}
	}
	return nil
}

// jsonArg checks an optional JSON document and returns its bind value:
// NULL when empty, otherwise its text.
func (s *Store) jsonArg(what string, doc []byte) (any, error) {
	if len(doc) == 0 {
		return nil, nil
	}
	if !utf8.Valid(doc) || !json.Valid(doc) {
		return nil, s.badInput("%s is not valid UTF-8 JSON", what)
	}
	return string(doc), nil
}

// subArgs are the bind values of a subscription's columns, in
// subWriteColumns order.
func (s *Store) subArgs(sub *outhook.Subscription) ([]any, error) {
	if sub == nil {
		return nil, s.badInput("subscription is nil")
	}
	if err := s.checkKey("subscription ID", sub.ID, true); err != nil {
		return nil, err
	}
	for i, ev := range sub.Events {
		if err := s.checkKey(fmt.Sprintf("subscription %q: events[%d]", sub.ID, i), ev, true); err != nil {
			return nil, err
		}
	}
	if err := s.checkKey(fmt.Sprintf("subscription %q: deliverer ID", sub.ID), sub.DelivererID, false); err != nil {
		return nil, err
	}
	if err := s.checkTimes(fmt.Sprintf("subscription %q", sub.ID), sub.CreatedAt, sub.UpdatedAt); err != nil {
		return nil, err
	}
	events, err := json.Marshal(sub.Events)
	if err != nil {
		return nil, err
	}
	config, err := s.jsonArg(fmt.Sprintf("subscription %q: config", sub.ID), sub.Config)
	if err != nil {
		return nil, err
	}
	var filter any
	if sub.Filter != nil {
		b, err := json.Marshal(sub.Filter)
		if err != nil {
			return nil, err
		}
		filter = string(b)
	}
	var limits any
	if sub.Limits != (outhook.DeliveryLimits{}) {
		b, err := json.Marshal(sub.Limits)
		if err != nil {
			return nil, err
		}
		limits = string(b)
	}
	return []any{sub.ID, text(sub.Name), string(events), sub.DelivererID, config, sub.Disabled,
		text(sub.DisabledReason), filter, limits, s.d.timeArg(sub.CreatedAt), s.d.timeArg(sub.UpdatedAt)}, nil
}

// subWriteColumns are the columns of a subscription that CreateSubscription
// and UpdateSubscription write; subColumns adds its health, which only
// RecordDeliveryOutcome and SetSubscriptionDisabled change.
const (
	subWriteColumns = "id, name, events, deliverer_id, config, disabled, disabled_reason, filter, delivery_limits, created_at, updated_at"
	subColumns      = subWriteColumns + ", " + healthColumns
	healthColumns   = "health_failures, health_failing_since, health_last_failure_at, health_last_success_at"
)

// prefixed returns a column list with each column qualified by alias.
func prefixed(alias, cols string) string {
	return alias + "." + strings.ReplaceAll(cols, ", ", ", "+alias+".")
}

type scanner interface{ Scan(dest ...any) error }

func scanSubscription(row scanner, extra ...any) (*outhook.Subscription, error) {
	var (
		sub                            outhook.Subscription
		events, config, filter, limits []byte
	)
	dest := append(extra[:len(extra):len(extra)], &sub.ID, &sub.Name, &events, &sub.DelivererID, &config, &sub.Disabled,
		&sub.DisabledReason, &filter, &limits, timeDest{&sub.CreatedAt}, timeDest{&sub.UpdatedAt})
	dest = append(dest, healthDest(&sub.Health)...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(events, &sub.Events); err != nil {
		return nil, fmt.Errorf("subscription %q: read events: %w", sub.ID, err)
	}
	if config != nil {
		sub.Config = config
	}
	if filter != nil {
		sub.Filter = new(outhook.Filter)
		if err := json.Unmarshal(filter, sub.Filter); err != nil {
			return nil, fmt.Errorf("subscription %q: read filter: %w", sub.ID, err)
		}
	}
	if limits != nil {
		if err := json.Unmarshal(limits, &sub.Limits); err != nil {
			return nil, fmt.Errorf("subscription %q: read limits: %w", sub.ID, err)
		}
	}
	return &sub, nil
}

func bySubscriptionAge(a, b *outhook.Subscription) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
}

// changeSubscriptions runs fn in a transaction that also bumps the
// subscription version, then drops this store's routing cache.
func (s *Store) changeSubscriptions(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	// Dropped after the commit (or its failure), never before: a match set
	// loaded between the two would be cached as current.
	defer s.invalidate()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.fail(ctx, op, err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := fn(tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q.bumpVersion); err != nil {
		return s.fail(ctx, op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail(ctx, op, err)
	}
	return nil
}

// indexEvents writes the selector rows of a subscription.
func (s *Store) indexEvents(ctx context.Context, tx *sql.Tx, sub *outhook.Subscription) error {
	const perStatement = 300 // 3 values each
	for rows := range slices.Chunk(sub.Events, perStatement) {
		var b strings.Builder
		b.WriteString("INSERT INTO outhook_subscription_events (selector, subscription_id, pattern) VALUES ")
		args := make([]any, 0, 3*len(rows))
		for i, ev := range rows {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?)")
			args = append(args, ev, sub.ID, ident.IsPattern(ev))
		}
		b.WriteString(" ON CONFLICT DO NOTHING")
		if _, err := tx.ExecContext(ctx, s.d.rebind(b.String()), args...); err != nil {
			return err
		}
	}
	return nil
}

// CreateSubscription implements outhook.Store.
func (s *Store) CreateSubscription(ctx context.Context, sub *outhook.Subscription) error {
	args, err := s.subArgs(sub)
	if err != nil {
		return err
	}
	const op = "create subscription"
	return s.changeSubscriptions(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q.insertSubscription, args...)
		if err != nil {
			return s.fail(ctx, op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.fail(ctx, op, err)
		} else if n == 0 {
			return fmt.Errorf("%w: subscription %q", outhook.ErrDuplicate, sub.ID)
		}
		if err := s.indexEvents(ctx, tx, sub); err != nil {
			return s.fail(ctx, op, err)
		}
		return nil
	})
}

// UpdateSubscription implements outhook.Store.
func (s *Store) UpdateSubscription(ctx context.Context, sub *outhook.Subscription) error {
	args, err := s.subArgs(sub)
	if err != nil {
		return err
	}
	const op = "update subscription"
	// The UPDATE takes the ID last.
	args = append(args[1:], sub.ID)
	return s.changeSubscriptions(ctx, op, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q.updateSubscription, args...)
		if err != nil {
			return s.fail(ctx, op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.fail(ctx, op, err)
		} else if n == 0 {
			return notFound("subscription", sub.ID)
		}
		if _, err := tx.ExecContext(ctx, s.q.unindexSubscription, sub.ID); err != nil {
			return s.fail(ctx, op, err)
		}
		if err := s.indexEvents(ctx, tx, sub); err != nil {
			return s.fail(ctx, op, err)
		}
		return nil
	})
}

// SetSubscriptionDisabled implements outhook.Store.
func (s *Store) SetSubscriptionDisabled(ctx context.Context, id string, disabled bool, reason string, at time.Time) (*outhook.Subscription, error) {
	const op = "set subscription disabled"
	if !storable(id) {
		return nil, notFound("subscription", id)
	}
	if err := s.checkTimes(fmt.Sprintf("subscription %q", id), at); err != nil {
		return nil, err
	}
	var sub *outhook.Subscription
	err := s.changeSubscriptions(ctx, op, func(tx *sql.Tx) error {
		var err error
		sub, err = scanSubscription(tx.QueryRowContext(ctx, s.q.setSubscriptionDisabled, disabled, text(reason), s.d.timeArg(at),
			disabled, disabled, id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("subscription", id)
		}
		if err != nil {
			return s.fail(ctx, op, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// DeleteSubscription implements outhook.Store. Its deliveries stay.
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	const op = "delete subscription"
	if !storable(id) {
		return notFound("subscription", id)
	}
	return s.changeSubscriptions(ctx, op, func(tx *sql.Tx) error {
		// The selector rows go first, explicitly: SQLite enforces the
		// foreign key's cascade only when foreign_keys is on.
		if _, err := tx.ExecContext(ctx, s.q.unindexSubscription, id); err != nil {
			return s.fail(ctx, op, err)
		}
		res, err := tx.ExecContext(ctx, s.q.deleteSubscription, id)
		if err != nil {
			return s.fail(ctx, op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return s.fail(ctx, op, err)
		} else if n == 0 {
			return notFound("subscription", id)
		}
		return nil
	})
}

// GetSubscription implements outhook.Store. It answers from the routing
// cache when the subscription version, read now (whatever
// MaxSubscriptionStaleness says), is the cache's; the read is shared by
// concurrent calls (see grouped.go).
func (s *Store) GetSubscription(ctx context.Context, id string) (*outhook.Subscription, error) {
	const op = "get subscription"
	if !storable(id) {
		return nil, notFound("subscription", id)
	}
	version, err := s.subscriptionVersion(ctx, true)
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	s.mu.RLock()
	sub, cached := s.subs[id]
	cached = cached && s.version == version
	s.mu.RUnlock()
	if !cached {
		sub, err = scanSubscription(s.db.QueryRowContext(ctx, s.q.getSubscription, id))
		if errors.Is(err, sql.ErrNoRows) {
			sub, err = nil, nil
		}
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		// Read after the version, so at least as new as it (see
		// MatchSubscriptions).
		s.mu.Lock()
		if s.version == version {
			if len(s.subs) >= maxCachedEvents {
				clear(s.subs)
			}
			s.subs[id] = sub
		}
		s.mu.Unlock()
	}
	if sub == nil {
		return nil, notFound("subscription", id)
	}
	return sub, nil
}

// ListSubscriptions implements outhook.Store: every subscription, oldest
// first (by creation time, then ID).
func (s *Store) ListSubscriptions(ctx context.Context) ([]*outhook.Subscription, error) {
	const op = "list subscriptions"
	rows, err := s.db.QueryContext(ctx, s.q.listSubscriptions)
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	defer rows.Close()
	out := []*outhook.Subscription{}
	for rows.Next() {
		sub, err := scanSubscription(rows)
		if err != nil {
			return nil, s.fail(ctx, op, err)
		}
		out = append(out, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return out, nil
}
