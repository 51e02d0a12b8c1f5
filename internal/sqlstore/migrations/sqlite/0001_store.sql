-- outhook store, version 1: subscriptions, their event index, deliveries and
-- their attempts. Times are INTEGER microseconds since the Unix epoch (UTC),
-- booleans INTEGER 0 or 1, JSON documents TEXT. STRICT tables refuse values
-- of the wrong type.

-- outhook_meta holds counters; subscriptions_version is bumped in the same
-- transaction as every change to a subscription, so that every process on
-- the file can tell, with one small read, whether its cache of match sets is
-- current.
CREATE TABLE outhook_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO outhook_meta (key, value) VALUES ('subscriptions_version', 0);

CREATE TABLE outhook_subscriptions (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    events          TEXT NOT NULL,      -- JSON array of the selectors, as given
    deliverer_id    TEXT NOT NULL,
    config          TEXT,               -- JSON, byte for byte, as given
    disabled        INTEGER NOT NULL,
    disabled_reason TEXT NOT NULL,
    filter          TEXT,               -- JSON
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX outhook_subscriptions_age ON outhook_subscriptions (created_at, id);

-- One row per distinct selector of a subscription: exact event IDs are
-- looked up by the primary key, patterns ('*', '**') are loaded together
-- and matched by the application.
CREATE TABLE outhook_subscription_events (
    selector        TEXT NOT NULL,
    subscription_id TEXT NOT NULL REFERENCES outhook_subscriptions (id) ON DELETE CASCADE,
    pattern         INTEGER NOT NULL,
    PRIMARY KEY (selector, subscription_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX outhook_subscription_events_subscription ON outhook_subscription_events (subscription_id);
CREATE INDEX outhook_subscription_events_patterns ON outhook_subscription_events (selector) WHERE pattern;

-- Deliveries outlive their subscriptions: no foreign key.
CREATE TABLE outhook_deliveries (
    id                   TEXT PRIMARY KEY,
    message_id           TEXT NOT NULL,
    event_id             TEXT NOT NULL,
    subscription_id      TEXT NOT NULL,
    deliverer_id         TEXT NOT NULL,
    status               TEXT NOT NULL,
    payload              TEXT,          -- JSON, byte for byte, as given
    occurred_at          INTEGER NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    next_attempt_at      INTEGER,
    next_attempt_trigger TEXT NOT NULL,
    external_id          TEXT NOT NULL,
    last_error           TEXT NOT NULL,
    attempt_count        INTEGER NOT NULL  -- rows in outhook_attempts
) STRICT;
-- Newest first, by (created_at, id), alone or after one equality filter.
CREATE INDEX outhook_deliveries_age ON outhook_deliveries (created_at, id);
CREATE INDEX outhook_deliveries_subscription ON outhook_deliveries (subscription_id, created_at, id);
CREATE INDEX outhook_deliveries_event ON outhook_deliveries (event_id, created_at, id);
CREATE INDEX outhook_deliveries_message ON outhook_deliveries (message_id, created_at, id);
CREATE INDEX outhook_deliveries_status ON outhook_deliveries (status, created_at, id);

-- The attempts of a delivery, in the order they were recorded (seq, from 1).
-- number is Attempt.Number as the client gave it.
CREATE TABLE outhook_attempts (
    delivery_id     TEXT NOT NULL REFERENCES outhook_deliveries (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    number          INTEGER NOT NULL,
    triggered_by    TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    deliverer_id    TEXT NOT NULL,
    duration_ns     INTEGER NOT NULL,
    outcome         TEXT NOT NULL,
    error           TEXT NOT NULL,
    error_class     TEXT NOT NULL,
    status_code     INTEGER NOT NULL,
    response        BLOB,               -- byte for byte; NULL when empty
    external_id     TEXT NOT NULL,
    retry_after_ns  INTEGER NOT NULL,
    next_attempt_at INTEGER,
    PRIMARY KEY (delivery_id, seq)
) STRICT;
