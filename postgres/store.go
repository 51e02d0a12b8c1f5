package postgres

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/sqlstore"
)

// StoreConfig configures NewStore. A nil *StoreConfig means the defaults.
type StoreConfig struct {
	// MaxSubscriptionStaleness is how long the store may route events with
	// its in-memory copy of the matching subscriptions without checking
	// whether another node (or another Store on the same database) changed
	// the subscriptions. Zero, the default, checks on every routed event:
	// one small query, a primary-key read, so one round trip to Postgres.
	// Changes made through this Store are seen at once whatever the
	// setting.
	MaxSubscriptionStaleness time.Duration
}

// Store is an outhook.Store in Postgres: subscriptions, deliveries and the
// log of their attempts, shared by every node of an application. Pass it
// as outhook.Config.Store, and Close it after the client has stopped. It
// is safe for concurrent use.
//
// The tables (outhook_subscriptions, outhook_deliveries, ...) are
// unqualified: they live in the first schema of the connections'
// search_path. Times are kept to the microsecond, in UTC; everything else
// comes back as it was stored, except that NUL bytes and invalid UTF-8 in
// free text (names, errors, but not the response excerpts of attempts,
// which are kept byte for byte) become U+FFFD, as Postgres text cannot
// hold them.
type Store struct {
	s  *sqlstore.Store
	db *sql.DB
}

var _ outhook.Store = (*Store)(nil)

// NewStore returns a store that works through pool. It checks that the
// store's tables are migrated (Migrate, or MigrateStore for the store's
// tables alone) and says what to run when they are not. A nil cfg means the defaults. Close the store when done with it; the
// pool stays open, and must outlive the store.
func NewStore(ctx context.Context, pool *pgxpool.Pool, cfg *StoreConfig) (*Store, error) {
	if pool == nil {
		return nil, errors.New("outhook: postgres: NewStore: the pool is nil")
	}
	var c sqlstore.Config
	if cfg != nil {
		c.MaxSubscriptionStaleness = cfg.MaxSubscriptionStaleness
	}
	db := stdlib.OpenDBFromPool(pool)
	s, err := sqlstore.New(ctx, db, sqlstore.Postgres(), &c)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return &Store{s: s, db: db}, nil
}

// Close releases what the store holds besides the pool: calls after Close
// fail. It does not close the pool.
func (s *Store) Close() error {
	return s.db.Close()
}

// MigrateStore creates the store's tables (outhook_subscriptions,
// outhook_deliveries, ...) in the first schema of the pool's search_path,
// or brings them up to date; Migrate does it along with the queue's. It is idempotent, records
// what it applied in the table outhook_migrations, and runs in one
// transaction under an advisory lock, so that nodes starting together
// migrate once.
func MigrateStore(ctx context.Context, pool *pgxpool.Pool) error {
	if pool == nil {
		return errors.New("outhook: postgres: MigrateStore: the pool is nil")
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return sqlstore.Migrate(ctx, db, sqlstore.Postgres())
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
