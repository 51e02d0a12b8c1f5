package postgres_test

import (
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/benchkit"
	"github.com/outhook/outhook/postgres"
)

// BenchmarkMatchSubscriptions is the routing hot path: the match set is
// cached, and each call checks the subscription version (one small query)
// unless a staleness is allowed. See benchkit.MatchSubscriptions.
func BenchmarkMatchSubscriptions(b *testing.B) {
	benchkit.MatchSubscriptions(b, func(b *testing.B, staleness time.Duration) outhook.Store {
		return newStore(b, newMigratedPool(b), &postgres.StoreConfig{MaxSubscriptionStaleness: staleness})
	})
}

// BenchmarkCreateAndUpdateDelivery is the store's share of one delivery.
func BenchmarkCreateAndUpdateDelivery(b *testing.B) {
	benchkit.CreateAndUpdateDelivery(b, newStore(b, newMigratedPool(b), nil))
}
