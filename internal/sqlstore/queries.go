package sqlstore

import (
	"strings"

	"github.com/outhook/outhook"
)

// queries are the fixed statements, with the dialect's placeholders. The
// statements whose shape depends on the call (multi-row inserts, filters)
// are built where they are used.
type queries struct {
	insertSubscription      string
	updateSubscription      string
	setSubscriptionDisabled string
	lockHealth              string
	setHealth               string
	deleteSubscription      string
	unindexSubscription     string
	getSubscription         string
	listSubscriptions       string
	exactMatches            string
	patternMatches          string
	bumpVersion             string
	readVersion             string

	getDelivery      string
	firstPending     string // the first pending delivery of an ordering key
	deliveryAttempts string
	updateDelivery   string
	reopenDelivery   string
	reopenFailed     string
	deliveryStatus   string
	// Postgres only: the update and the attempt in one statement.
	updateDeliveryWithAttempt string
	// Postgres only, for groups of calls (see grouped.go): the rows come
	// as one array per column.
	insertDeliveries string
	updateDeliveries string
	getDeliveries    string
}

const versionKey = "'subscriptions_version'"

func newQueries(d Dialect) queries {
	q := queries{
		insertSubscription: `INSERT INTO outhook_subscriptions (` + subWriteColumns + `) VALUES (` + marks(11) + `) ON CONFLICT (id) DO NOTHING`,
		updateSubscription: `UPDATE outhook_subscriptions SET name = ?, events = ?, deliverer_id = ?, config = ?, disabled = ?,
			disabled_reason = ?, filter = ?, delivery_limits = ?, created_at = ?, updated_at = ? WHERE id = ?`,
		// Enabling a disabled subscription starts its run of failures
		// afresh; the right-hand sides read the row as it was.
		setSubscriptionDisabled: `UPDATE outhook_subscriptions SET disabled = ?, disabled_reason = ?, updated_at = ?,
			health_failures = CASE WHEN disabled AND NOT ? THEN 0 ELSE health_failures END,
			health_failing_since = CASE WHEN disabled AND NOT ? THEN NULL ELSE health_failing_since END
			WHERE id = ? RETURNING ` + subColumns,
		// Takes the row's write lock first (a no-op update), so that the
		// read and the update of RecordDeliveryOutcome are one step on
		// both databases.
		lockHealth: `UPDATE outhook_subscriptions SET health_failures = health_failures WHERE id = ? RETURNING ` + healthColumns,
		setHealth: `UPDATE outhook_subscriptions SET health_failures = ?, health_failing_since = ?, health_last_failure_at = ?,
			health_last_success_at = ? WHERE id = ?`,
		deleteSubscription:  `DELETE FROM outhook_subscriptions WHERE id = ?`,
		unindexSubscription: `DELETE FROM outhook_subscription_events WHERE subscription_id = ?`,
		getSubscription:     `SELECT ` + subColumns + ` FROM outhook_subscriptions WHERE id = ?`,
		listSubscriptions:   `SELECT ` + subColumns + ` FROM outhook_subscriptions ORDER BY created_at, id`,
		exactMatches: `SELECT ` + prefixed("s", subColumns) + ` FROM outhook_subscription_events e
			JOIN outhook_subscriptions s ON s.id = e.subscription_id WHERE e.selector = ? AND NOT e.pattern`,
		patternMatches: `SELECT e.selector, ` + prefixed("s", subColumns) + ` FROM outhook_subscription_events e
			JOIN outhook_subscriptions s ON s.id = e.subscription_id WHERE e.pattern`,
		bumpVersion: `INSERT INTO outhook_meta (key, value) VALUES (` + versionKey + `, 1)
			ON CONFLICT (key) DO UPDATE SET value = outhook_meta.value + 1`,
		readVersion: `SELECT value FROM outhook_meta WHERE key = ` + versionKey,

		getDelivery: `SELECT ` + deliveryColumns + ` FROM outhook_deliveries WHERE id = ?`,
		firstPending: `SELECT id, next_attempt_at FROM outhook_deliveries
			WHERE subscription_id = ? AND ordering_key = ? AND status = '` + string(outhook.DeliveryPending) + `'
			AND ordering_key <> ''  -- implies the partial index's condition
			ORDER BY occurred_at, message_id, id LIMIT 1`,
		deliveryAttempts: `SELECT ` + attemptColumns + ` FROM outhook_attempts WHERE delivery_id = ? AND seq <= ? ORDER BY seq`,
		// external_id: an empty ExternalID keeps the delivery's.
		updateDelivery: `UPDATE outhook_deliveries SET status = ?, next_attempt_at = ?, next_attempt_trigger = ?, last_error = ?,
			external_id = coalesce(nullif(?, ''), external_id), updated_at = ?, attempt_count = attempt_count + ?
			WHERE id = ? RETURNING attempt_count`,
		reopenDelivery: `UPDATE outhook_deliveries SET status = '` + string(outhook.DeliveryPending) + `', next_attempt_at = ?,
			updated_at = ?, next_attempt_trigger = '` + string(outhook.TriggerManual) + `'
			WHERE id = ? AND status <> '` + string(outhook.DeliveryPending) + `' RETURNING ` + deliveryColumns,
		reopenFailed: `UPDATE outhook_deliveries SET status = '` + string(outhook.DeliveryPending) + `', next_attempt_at = ?,
			updated_at = ?, next_attempt_trigger = '` + string(outhook.TriggerManual) + `'
			WHERE id = ? AND status = '` + string(outhook.DeliveryFailed) + `' AND attempt_count = ? RETURNING ` + deliveryColumns,
		deliveryStatus: `SELECT status, attempt_count FROM outhook_deliveries WHERE id = ?`,
	}
	if d.kind == kindPostgres {
		// One statement, so one round trip and its own transaction: the
		// UPDATE locks the row and raises the count, the INSERT appends
		// the attempt under that number. (SQLite has no data-modifying
		// WITH, and no round trips to save.)
		q.updateDeliveryWithAttempt = `WITH u AS (
			UPDATE outhook_deliveries SET status = ?, next_attempt_at = ?, next_attempt_trigger = ?, last_error = ?,
				external_id = coalesce(nullif(?, ''), external_id), updated_at = ?, attempt_count = attempt_count + 1
			WHERE id = ? RETURNING id, attempt_count)
		INSERT INTO outhook_attempts (` + attemptColumns + `)
		SELECT u.id, u.attempt_count, ?::integer, ?::text, ?::timestamptz, ?::text, ?::bigint, ?::text, ?::text, ?::text,
			?::integer, ?::bytea, ?::text, ?::bigint, ?::timestamptz, ?::text, ?::text FROM u`
	}
	if d.kind == kindPostgres {
		q.insertDeliveries = `INSERT INTO outhook_deliveries (` + deliveryColumns + `)
		SELECT id, message_id, event_id, subscription_id, deliverer_id, status, payload::json, occurred_at, created_at,
			updated_at, next_attempt_at, next_attempt_trigger, external_id, last_error, attempt_count, ordering_key
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[],
			$9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::text[], $13::text[], $14::text[], $15::integer[],
			$16::text[])
			AS t(` + deliveryColumns + `)
		ON CONFLICT (id) DO NOTHING`
		// One row of input per update, for distinct deliveries; u updates
		// them and returns their new counts, a appends the attempts under
		// those counts, and the IDs updated come back.
		q.updateDeliveries = `WITH i AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],
				$8::boolean[], $9::integer[], $10::text[], $11::timestamptz[], $12::text[], $13::bigint[], $14::text[], $15::text[],
				$16::text[], $17::integer[], $18::bytea[], $19::text[], $20::bigint[], $21::timestamptz[], $22::text[], $23::text[])
			AS t(id, status, next_attempt_at, next_attempt_trigger, last_error, external_id, updated_at, has_attempt,
				number, triggered_by, started_at, deliverer_id, duration_ns, outcome, error, error_class, status_code,
				response, a_external_id, retry_after_ns, a_next_attempt_at, request_headers, response_headers)
		), u AS (
			UPDATE outhook_deliveries d SET status = i.status, next_attempt_at = i.next_attempt_at,
				next_attempt_trigger = i.next_attempt_trigger, last_error = i.last_error,
				external_id = coalesce(nullif(i.external_id, ''), d.external_id), updated_at = i.updated_at,
				attempt_count = d.attempt_count + CASE WHEN i.has_attempt THEN 1 ELSE 0 END
			FROM i WHERE d.id = i.id
			RETURNING d.id, d.attempt_count
		), a AS (
			INSERT INTO outhook_attempts (` + attemptColumns + `)
			SELECT u.id, u.attempt_count, i.number, i.triggered_by, i.started_at, i.deliverer_id, i.duration_ns, i.outcome,
				i.error, i.error_class, i.status_code, i.response, i.a_external_id, i.retry_after_ns, i.a_next_attempt_at,
				i.request_headers, i.response_headers
			FROM u JOIN i ON i.id = u.id WHERE i.has_attempt
		)
		SELECT id FROM u`
		q.getDeliveries = `SELECT ` + deliveryColumns + ` FROM outhook_deliveries WHERE id = ANY($1::text[])`
	}
	for _, p := range []*string{
		&q.insertSubscription, &q.updateSubscription, &q.setSubscriptionDisabled, &q.lockHealth, &q.setHealth, &q.deleteSubscription,
		&q.unindexSubscription, &q.getSubscription, &q.listSubscriptions, &q.exactMatches, &q.patternMatches,
		&q.bumpVersion, &q.readVersion, &q.getDelivery, &q.firstPending, &q.deliveryAttempts, &q.updateDelivery,
		&q.reopenDelivery, &q.reopenFailed, &q.deliveryStatus, &q.updateDeliveryWithAttempt,
	} {
		*p = d.rebind(*p)
	}
	return q
}

// marks returns n comma-separated placeholders.
func marks(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
