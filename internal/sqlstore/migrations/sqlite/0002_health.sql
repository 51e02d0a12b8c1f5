-- outhook store, version 2: the health of each subscription
-- (outhook.Subscription.Health), which the client updates when a delivery
-- ends (Store.RecordDeliveryOutcome). Health changes do not bump
-- subscriptions_version: routing does not read health, and a bump per
-- delivery would make every process drop its routing cache. Times are
-- INTEGER microseconds, NULL for the zero time. The columns have defaults,
-- so the code of the release before still runs.
ALTER TABLE outhook_subscriptions ADD COLUMN health_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outhook_subscriptions ADD COLUMN health_failing_since INTEGER;
ALTER TABLE outhook_subscriptions ADD COLUMN health_last_failure_at INTEGER;
ALTER TABLE outhook_subscriptions ADD COLUMN health_last_success_at INTEGER;
