package sqlstore

import (
	"context"
	"strings"

	"github.com/outhook/outhook"
)

var _ outhook.DeliveryCounter = (*Store)(nil)

// CountDeliveries implements outhook.DeliveryCounter with one GROUP BY
// over outhook_deliveries. The range of created_at is read through the
// index outhook_deliveries_age (created_at, id), or
// outhook_deliveries_subscription (subscription_id, created_at, id) for
// one subscription; the grouped columns come from the rows themselves.
// Times in q are compared at the microsecond the store keeps.
func (s *Store) CountDeliveries(ctx context.Context, q outhook.DeliveryCountQuery) ([]outhook.DeliveryCount, error) {
	const op = "count deliveries"
	if !storable(q.SubscriptionID) {
		return nil, nil // no stored delivery has it
	}
	var (
		where []string
		args  []any
	)
	if q.SubscriptionID != "" {
		where = append(where, "subscription_id = ?")
		args = append(args, q.SubscriptionID)
	}
	where, args = s.createdBetween(where, args, q.Since, q.Until)
	stmt := "SELECT event_id, subscription_id, deliverer_id, status, count(*) FROM outhook_deliveries"
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	stmt += " GROUP BY event_id, subscription_id, deliverer_id, status"

	rows, err := s.db.QueryContext(ctx, s.d.rebind(stmt), args...)
	if err != nil {
		return nil, s.fail(ctx, op, err)
	}
	defer rows.Close()
	var out []outhook.DeliveryCount
	for rows.Next() {
		var (
			c      outhook.DeliveryCount
			status string
			n      int64
		)
		if err := rows.Scan(&c.EventID, &c.SubscriptionID, &c.DelivererID, &status, &n); err != nil {
			return nil, s.fail(ctx, op, err)
		}
		c.Status, c.Count = outhook.DeliveryStatus(status), int(n)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err)
	}
	return out, nil
}
