-- outhook store, version 4: a subscription's delivery limits
-- (outhook.Subscription.Limits: rate, burst, maxInFlight) as a JSON object,
-- NULL when it sets none; and a delivery's ordering key
-- (outhook.Delivery.OrderingKey), '' when it has none, with the index that
-- finds the first pending delivery of a key. The new columns are nullable
-- or have a default, so the code of the release before still runs. The
-- index is built in the migration's transaction, which holds writes to
-- the deliveries while it scans them: on a large table, migrate at a quiet
-- time.
ALTER TABLE outhook_subscriptions ADD COLUMN delivery_limits TEXT;
ALTER TABLE outhook_deliveries ADD COLUMN ordering_key TEXT NOT NULL DEFAULT '';
CREATE INDEX outhook_deliveries_ordering ON outhook_deliveries (subscription_id, ordering_key, occurred_at, message_id, id)
    WHERE status = 'pending' AND ordering_key <> '';
