package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/sqlstore"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// StoreConfig configures NewStore. A nil *StoreConfig means the defaults.
type StoreConfig struct {
	// MaxSubscriptionStaleness is how long the store may route events with
	// its in-memory copy of the matching subscriptions without checking
	// whether another process (or another Store on the same file) changed
	// the subscriptions. Zero, the default, checks on every routed event:
	// one small query, a primary-key read. Changes made through this Store
	// are seen at once whatever the setting.
	MaxSubscriptionStaleness time.Duration
}

// Store is an outhook.Store in a SQLite database: subscriptions, deliveries
// and the log of their attempts survive restarts. Pass it as
// outhook.Config.Store. It is safe for concurrent use, and several
// processes may share the file.
//
// Times are kept to the microsecond, in UTC; everything else comes back as
// it was stored, except that invalid UTF-8 and NUL bytes in free text
// (names, errors, but not the response excerpts of attempts, which are kept
// byte for byte) become U+FFFD.
type Store struct {
	s *sqlstore.Store
}

var _ outhook.Store = (*Store)(nil)

// NewStore returns a store on db, a database opened with the driver of
// modernc.org/sqlite (driver name "sqlite"), best with Open. It checks that
// the store's tables are migrated (Migrate, or MigrateStore for the store's
// tables alone) and says what to run when they are not. A nil cfg means the
// defaults.
//
// Open configures what the store needs: WAL, so that readers do not wait
// for the writer, and a busy timeout, so that writers wait for each other
// instead of failing with "database is locked". A database opened
// otherwise needs at least those two, e.g.
//
//	db, err := sql.Open("sqlite", "file:outhook.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
//
// The store works with any number of connections, one included. It does
// not close db.
func NewStore(ctx context.Context, db *sql.DB, cfg *StoreConfig) (*Store, error) {
	var c sqlstore.Config
	if cfg != nil {
		c.MaxSubscriptionStaleness = cfg.MaxSubscriptionStaleness
	}
	s, err := sqlstore.New(ctx, db, sqlstore.SQLite(), &c)
	if err != nil {
		return nil, err
	}
	return &Store{s: s}, nil
}

// MigrateStore creates the store's tables (outhook_subscriptions,
// outhook_deliveries, ...) in db, or brings them up to date; Migrate does
// it along with the queue's.
// It is idempotent, records what it applied in the table
// outhook_migrations, and runs in one transaction that takes the write
// lock first, so that processes starting together migrate once.
func MigrateStore(ctx context.Context, db *sql.DB) error {
	return sqlstore.Migrate(ctx, db, sqlstore.SQLite())
}

// CreateSubscription implements outhook.Store.
func (s *Store) CreateSubscription(ctx context.Context, sub *outhook.Subscription) error {
	return s.s.CreateSubscription(ctx, sub)
}

// UpdateSubscription implements outhook.Store.
func (s *Store) UpdateSubscription(ctx context.Context, sub *outhook.Subscription) error {
	return s.s.UpdateSubscription(ctx, sub)
}

// SetSubscriptionDisabled implements outhook.Store.
func (s *Store) SetSubscriptionDisabled(ctx context.Context, id string, disabled bool, reason string, at time.Time) (*outhook.Subscription, error) {
	return s.s.SetSubscriptionDisabled(ctx, id, disabled, reason, at)
}

// RecordDeliveryOutcome implements outhook.Store.
func (s *Store) RecordDeliveryOutcome(ctx context.Context, id string, succeeded bool, at time.Time) (before, after outhook.SubscriptionHealth, err error) {
	return s.s.RecordDeliveryOutcome(ctx, id, succeeded, at)
}

// DeleteSubscription implements outhook.Store.
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	return s.s.DeleteSubscription(ctx, id)
}

// GetSubscription implements outhook.Store.
func (s *Store) GetSubscription(ctx context.Context, id string) (*outhook.Subscription, error) {
	return s.s.GetSubscription(ctx, id)
}

// ListSubscriptions implements outhook.Store.
func (s *Store) ListSubscriptions(ctx context.Context) ([]*outhook.Subscription, error) {
	return s.s.ListSubscriptions(ctx)
}

// MatchSubscriptions implements outhook.Store. It answers from memory
// after one small query that tells whether the subscriptions changed (see
// StoreConfig.MaxSubscriptionStaleness).
func (s *Store) MatchSubscriptions(ctx context.Context, eventID string) ([]*outhook.Subscription, error) {
	return s.s.MatchSubscriptions(ctx, eventID)
}

// CreateDeliveries implements outhook.Store.
func (s *Store) CreateDeliveries(ctx context.Context, ds []*outhook.Delivery) error {
	return s.s.CreateDeliveries(ctx, ds)
}

// GetDelivery implements outhook.Store.
func (s *Store) GetDelivery(ctx context.Context, id string) (*outhook.Delivery, error) {
	return s.s.GetDelivery(ctx, id)
}

// UpdateDelivery implements outhook.Store.
func (s *Store) UpdateDelivery(ctx context.Context, id string, attempt *outhook.Attempt, u outhook.DeliveryUpdate) error {
	return s.s.UpdateDelivery(ctx, id, attempt, u)
}

// ReopenDelivery implements outhook.Store.
func (s *Store) ReopenDelivery(ctx context.Context, id string, at time.Time) (*outhook.Delivery, error) {
	return s.s.ReopenDelivery(ctx, id, at)
}

// ReopenFailedDelivery implements outhook.FailedReopener.
func (s *Store) ReopenFailedDelivery(ctx context.Context, id string, attempts int, at time.Time) (*outhook.Delivery, error) {
	return s.s.ReopenFailedDelivery(ctx, id, attempts, at)
}

// ListDeliveries implements outhook.Store.
func (s *Store) ListDeliveries(ctx context.Context, q outhook.DeliveryQuery) ([]*outhook.Delivery, error) {
	return s.s.ListDeliveries(ctx, q)
}

// FirstPending implements outhook.Store.
func (s *Store) FirstPending(ctx context.Context, subscriptionID, orderingKey string) (*outhook.PendingHead, error) {
	return s.s.FirstPending(ctx, subscriptionID, orderingKey)
}
