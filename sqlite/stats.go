package sqlite

import (
	"context"

	"github.com/outhook/outhook"
)

var _ outhook.DeliveryCounter = (*Store)(nil)

// CountDeliveries implements outhook.DeliveryCounter: one GROUP BY query
// over the range's deliveries, which Client.DeliveryStats adds up.
func (s *Store) CountDeliveries(ctx context.Context, q outhook.DeliveryCountQuery) ([]outhook.DeliveryCount, error) {
	return s.s.CountDeliveries(ctx, q)
}
