package outhook

import (
	"cmp"
	"context"
)

// orderingLane names the deliveries to one subscription with one ordering
// key, which are made one at a time in emit order.
type orderingLane struct {
	subscriptionID, key string
}

// emitOrder compares deliveries in emit order: by OccurredAt, then
// MessageID, then ID.
func emitOrder(a, b *Delivery) int {
	return cmp.Or(a.OccurredAt.Compare(b.OccurredAt), cmp.Compare(a.MessageID, b.MessageID), cmp.Compare(a.ID, b.ID))
}

// syncLane puts a delivery with an ordering key in its lane's set of
// pending deliveries, or takes it out, as its status says now. It is
// called after every change of status, without a shard lock held.
func (s *MemoryStore) syncLane(d *Delivery) {
	lane := orderingLane{d.SubscriptionID, d.OrderingKey}
	s.kmu.Lock()
	defer s.kmu.Unlock()
	sh := s.shard(d.ID)
	sh.mu.Lock()
	pending := d.Status == DeliveryPending
	sh.mu.Unlock()
	set := s.keyed[lane]
	if !pending {
		delete(set, d.ID)
		if len(set) == 0 {
			delete(s.keyed, lane)
		}
		return
	}
	if set == nil {
		if s.keyed == nil {
			s.keyed = map[orderingLane]map[string]*Delivery{}
		}
		set = map[string]*Delivery{}
		s.keyed[lane] = set
	}
	set[d.ID] = d
}

// FirstPending implements Store. A lane holds the deliveries of one key
// that are pending, usually few: it is searched in full.
func (s *MemoryStore) FirstPending(ctx context.Context, subscriptionID, orderingKey string) (*PendingHead, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.kmu.Lock()
	defer s.kmu.Unlock()
	var first *Delivery
	for _, d := range s.keyed[orderingLane{subscriptionID, orderingKey}] {
		if first == nil || emitOrder(d, first) < 0 {
			first = d
		}
	}
	if first == nil {
		return nil, nil
	}
	sh := s.shard(first.ID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return &PendingHead{ID: first.ID, NextAttemptAt: first.NextAttemptAt}, nil
}
