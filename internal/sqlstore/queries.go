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
	deleteSubscription      string
	unindexSubscription     string
	getSubscription         string
	listSubscriptions       string
	exactMatches            string
	patternMatches          string
	bumpVersion             string
	readVersion             string

	getDelivery      string
	deliveryAttempts string
	updateDelivery   string
	reopenDelivery   string
	deliveryStatus   string
	// Postgres only: the update and the attempt in one statement.
	updateDeliveryWithAttempt string
}

const versionKey = "'subscriptions_version'"

func newQueries(d Dialect) queries {
	q := queries{
		insertSubscription: `INSERT INTO outhook_subscriptions (` + subColumns + `) VALUES (` + marks(10) + `) ON CONFLICT (id) DO NOTHING`,
		updateSubscription: `UPDATE outhook_subscriptions SET name = ?, events = ?, deliverer_id = ?, config = ?, disabled = ?,
			disabled_reason = ?, filter = ?, created_at = ?, updated_at = ? WHERE id = ?`,
		setSubscriptionDisabled: `UPDATE outhook_subscriptions SET disabled = ?, disabled_reason = ?, updated_at = ? WHERE id = ?
			RETURNING ` + subColumns,
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

		getDelivery:      `SELECT ` + deliveryColumns + ` FROM outhook_deliveries WHERE id = ?`,
		deliveryAttempts: `SELECT ` + attemptColumns + ` FROM outhook_attempts WHERE delivery_id = ? AND seq <= ? ORDER BY seq`,
		// external_id: an empty ExternalID keeps the delivery's.
		updateDelivery: `UPDATE outhook_deliveries SET status = ?, next_attempt_at = ?, next_attempt_trigger = ?, last_error = ?,
			external_id = coalesce(nullif(?, ''), external_id), updated_at = ?, attempt_count = attempt_count + ?
			WHERE id = ? RETURNING attempt_count`,
		reopenDelivery: `UPDATE outhook_deliveries SET status = '` + string(outhook.DeliveryPending) + `', next_attempt_at = ?,
			updated_at = ?, next_attempt_trigger = '` + string(outhook.TriggerManual) + `'
			WHERE id = ? AND status <> '` + string(outhook.DeliveryPending) + `' RETURNING ` + deliveryColumns,
		deliveryStatus: `SELECT status FROM outhook_deliveries WHERE id = ?`,
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
			?::integer, ?::bytea, ?::text, ?::bigint, ?::timestamptz FROM u`
	}
	for _, p := range []*string{
		&q.insertSubscription, &q.updateSubscription, &q.setSubscriptionDisabled, &q.deleteSubscription,
		&q.unindexSubscription, &q.getSubscription, &q.listSubscriptions, &q.exactMatches, &q.patternMatches,
		&q.bumpVersion, &q.readVersion, &q.getDelivery, &q.deliveryAttempts, &q.updateDelivery,
		&q.reopenDelivery, &q.deliveryStatus, &q.updateDeliveryWithAttempt,
	} {
		*p = d.rebind(*p)
	}
	return q
}

// marks returns n comma-separated placeholders.
func marks(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
