-- outhook store, version 1: subscriptions, their event index, deliveries and
-- their attempts. Tables are unqualified: they land in the first schema of
-- the connection's search_path. IDs use the "C" collation so that they sort
-- byte by byte, as Go compares strings.

-- outhook_meta holds counters; subscriptions_version is bumped in the same
-- transaction as every change to a subscription, so that every node can
-- tell, with one small read, whether its cache of match sets is current.
CREATE TABLE outhook_meta (
    key   text COLLATE "C" PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO outhook_meta (key, value) VALUES ('subscriptions_version', 0);

CREATE TABLE outhook_subscriptions (
    id              text COLLATE "C" PRIMARY KEY,
    name            text NOT NULL,
    events          jsonb NOT NULL,     -- the selectors, as given
    deliverer_id    text NOT NULL,
    config          json,               -- byte for byte, as given
    disabled        boolean NOT NULL,
    disabled_reason text NOT NULL,
    filter          jsonb,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX outhook_subscriptions_age ON outhook_subscriptions (created_at, id);

-- One row per distinct selector of a subscription: exact event IDs are
-- looked up by the primary key, patterns ('*', '**') are loaded together
-- and matched by the application.
CREATE TABLE outhook_subscription_events (
    selector        text COLLATE "C" NOT NULL,
    subscription_id text COLLATE "C" NOT NULL REFERENCES outhook_subscriptions (id) ON DELETE CASCADE,
    pattern         boolean NOT NULL,
    PRIMARY KEY (selector, subscription_id)
);
CREATE INDEX outhook_subscription_events_subscription ON outhook_subscription_events (subscription_id);
CREATE INDEX outhook_subscription_events_patterns ON outhook_subscription_events (selector) WHERE pattern;

-- Deliveries outlive their subscriptions: no foreign key.
CREATE TABLE outhook_deliveries (
    id                   text COLLATE "C" PRIMARY KEY,
    message_id           text COLLATE "C" NOT NULL,
    event_id             text COLLATE "C" NOT NULL,
    subscription_id      text COLLATE "C" NOT NULL,
    deliverer_id         text NOT NULL,
    status               text NOT NULL,
    payload              json,
    occurred_at          timestamptz NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    next_attempt_at      timestamptz,
    next_attempt_trigger text NOT NULL,
    external_id          text NOT NULL,
    last_error           text NOT NULL,
    attempt_count        integer NOT NULL  -- rows in outhook_attempts
);
-- Newest first, by (created_at, id), alone or after one equality filter.
CREATE INDEX outhook_deliveries_age ON outhook_deliveries (created_at, id);
CREATE INDEX outhook_deliveries_subscription ON outhook_deliveries (subscription_id, created_at, id);
CREATE INDEX outhook_deliveries_event ON outhook_deliveries (event_id, created_at, id);
CREATE INDEX outhook_deliveries_message ON outhook_deliveries (message_id, created_at, id);
CREATE INDEX outhook_deliveries_status ON outhook_deliveries (status, created_at, id);

-- The attempts of a delivery, in the order they were recorded (seq, from 1).
-- number is Attempt.Number as the client gave it.
CREATE TABLE outhook_attempts (
    delivery_id     text COLLATE "C" NOT NULL REFERENCES outhook_deliveries (id) ON DELETE CASCADE,
    seq             integer NOT NULL,
    number          integer NOT NULL,
    triggered_by    text NOT NULL,
    started_at      timestamptz NOT NULL,
    deliverer_id    text NOT NULL,
    duration_ns     bigint NOT NULL,
    outcome         text NOT NULL,
    error           text NOT NULL,
    error_class     text NOT NULL,
    status_code     integer NOT NULL,
    response        bytea,              -- byte for byte; NULL when empty
    external_id     text NOT NULL,
    retry_after_ns  bigint NOT NULL,
    next_attempt_at timestamptz,
    PRIMARY KEY (delivery_id, seq)
);
