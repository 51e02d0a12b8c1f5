package outhook

import (
	"context"
	"sort"
)

var _ DeliveryCounter = (*MemoryStore)(nil)

// CountDeliveries implements DeliveryCounter. It walks the deliveries
// created in the range, found by binary search in the order of creation,
// reading each one's status under its shard's lock, as ListDeliveries
// does, but copying nothing.
func (s *MemoryStore) CountDeliveries(ctx context.Context, q DeliveryCountQuery) ([]DeliveryCount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	groups := map[DeliveryCount]int{} // by the key fields; Count zero
	s.omu.RLock()
	end := len(s.order)
	if !q.Until.IsZero() {
		end = sort.Search(end, func(i int) bool { return !s.order[i].CreatedAt.Before(q.Until) })
	}
	start := 0
	if !q.Since.IsZero() {
		start = sort.Search(end, func(i int) bool { return !s.order[i].CreatedAt.Before(q.Since) })
	}
	for i, d := range s.order[start:end] {
		// The store keeps every pending delivery: a long range may be
		// long to walk.
		if i%4096 == 4095 && ctx.Err() != nil {
			s.omu.RUnlock()
			return nil, ctx.Err()
		}
		sh := s.shard(d.ID)
		sh.mu.Lock()
		if q.SubscriptionID == "" || q.SubscriptionID == d.SubscriptionID {
			groups[DeliveryCount{EventID: d.EventID, SubscriptionID: d.SubscriptionID, DelivererID: d.DelivererID, Status: d.Status}]++
		}
		sh.mu.Unlock()
	}
	s.omu.RUnlock()
	return groupCounts(groups), nil
}
