package sqlite_test

import (
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/benchkit"
	"github.com/outhook/outhook/sqlite"
)

// BenchmarkMatchSubscriptions is the routing hot path: the match set is
// cached, and each call checks the subscription version (one small query)
// unless a staleness is allowed. See benchkit.MatchSubscriptions.
func BenchmarkMatchSubscriptions(b *testing.B) {
	benchkit.MatchSubscriptions(b, func(b *testing.B, staleness time.Duration) outhook.Store {
		s, _ := newStore(b, &sqlite.StoreConfig{MaxSubscriptionStaleness: staleness})
		return s
	})
}

// BenchmarkCreateAndUpdateDelivery is the store's share of one delivery.
func BenchmarkCreateAndUpdateDelivery(b *testing.B) {
	s, _ := newStore(b, nil)
	benchkit.CreateAndUpdateDelivery(b, s)
}
