package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

// Run runs the conformance suite against the store newStore returns.
// newStore is called once per subtest and must return an empty store that
// no other subtest uses; it registers the store's cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) outhook.Store) {
	t.Helper()
	groups := []struct {
		name  string
		tests []test
	}{
		{"Subscriptions", subscriptionTests},
		{"Match", matchTests},
		{"Deliveries", deliveryTests},
		{"Store", storeTests},
		{"Health", healthTests},
		{"Stats", statsTests},
		{"Ordering", orderingTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					s := newStore(t)
					require.NotNil(t, s, "newStore returned nil")
					tt.fn(t, s)
				})
			}
		})
	}
}

// test is one subtest: it gets an empty store of its own.
type test struct {
	name string
	fn   func(t *testing.T, s outhook.Store)
}

// base is the time the fixtures are built around. It has nanoseconds, which
// a store may drop, and it is not on a whole second, so a store that keeps
// seconds only fails.
var base = time.Date(2031, time.March, 14, 15, 9, 26, 535_897_932, time.UTC)

// ist is a zone away from UTC, to check that stores keep the instant of a
// time that is not in UTC.
var ist = time.FixedZone("IST", 5*3600+1800)

// at returns base plus n seconds.
func at(n int) time.Time { return base.Add(time.Duration(n) * time.Second) }

// tolerance is how far a time or duration read back may be from the one
// stored: stores keep at least microseconds.
const tolerance = time.Microsecond

// requireTime checks that got is the instant want, within tolerance. The
// zero time must come back as the zero time.
func requireTime(t *testing.T, want, got time.Time, field string) {
	t.Helper()
	if want.IsZero() {
		require.Truef(t, got.IsZero(), "%s: want the zero time, got %s", field, fmtTime(got))
		return
	}
	require.Falsef(t, got.IsZero(), "%s: want %s, got the zero time", field, fmtTime(want))
	d := got.Round(0).Sub(want.Round(0)) // wall clock only
	if d < 0 {
		d = -d
	}
	require.LessOrEqualf(t, d, tolerance, "%s: want %s, got %s: %s apart (stores keep at least microseconds)",
		field, fmtTime(want), fmtTime(got), d)
}

func fmtTime(tm time.Time) string { return tm.UTC().Format(time.RFC3339Nano) }

// requireDuration checks that got is want within tolerance.
func requireDuration(t *testing.T, want, got time.Duration, field string) {
	t.Helper()
	d := got - want
	if d < 0 {
		d = -d
	}
	require.LessOrEqualf(t, d, tolerance, "%s: want %s, got %s (stores keep at least microseconds)", field, want, got)
}

// requireJSON checks that got is the JSON document want: the same values,
// objects compared by key and numbers by their text. An empty want needs an
// empty got.
func requireJSON(t *testing.T, want, got json.RawMessage, field string) {
	t.Helper()
	if len(want) == 0 {
		require.Emptyf(t, got, "%s: want nothing, got %s", field, got)
		return
	}
	require.Truef(t, json.Valid(got), "%s: want %s, got invalid JSON %q", field, want, got)
	w, g := decodeJSON(t, want), decodeJSON(t, got)
	require.Truef(t, reflect.DeepEqual(w, g), "%s: want the JSON document\n%s\ngot\n%s", field, want, got)
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), "decode %s", b)
	return v
}

// requireSubscription checks every field of got against want.
func requireSubscription(t *testing.T, want, got *outhook.Subscription, msg string) {
	t.Helper()
	require.NotNilf(t, got, "%s: got no subscription", msg)
	f := func(field string) string { return msg + ": " + field }
	require.Equal(t, want.ID, got.ID, f("ID"))
	require.Equal(t, want.Name, got.Name, f("Name"))
	require.Equal(t, orEmpty(want.Events), orEmpty(got.Events), f("Events, in order"))
	require.Equal(t, want.DelivererID, got.DelivererID, f("DelivererID"))
	requireJSON(t, want.Config, got.Config, f("Config"))
	require.Equal(t, want.Disabled, got.Disabled, f("Disabled"))
	require.Equal(t, want.DisabledReason, got.DisabledReason, f("DisabledReason"))
	if want.Filter == nil {
		require.Nil(t, got.Filter, f("Filter (nil stays nil)"))
	} else {
		require.NotNil(t, got.Filter, f("Filter (a set one stays set)"))
		require.Equal(t, want.Filter.Expr, got.Filter.Expr, f("Filter.Expr (the CEL source, byte for byte)"))
		require.Equal(t, want.Filter.Field, got.Filter.Field, f("Filter.Field"))
		require.Equal(t, orEmpty(want.Filter.AnyOf), orEmpty(got.Filter.AnyOf), f("Filter.AnyOf, in order"))
	}
	requireTime(t, want.CreatedAt, got.CreatedAt, f("CreatedAt"))
	requireTime(t, want.UpdatedAt, got.UpdatedAt, f("UpdatedAt"))
}

// requireDelivery checks every field of got, attempts included, against
// want.
func requireDelivery(t *testing.T, want, got *outhook.Delivery, msg string) {
	t.Helper()
	require.NotNilf(t, got, "%s: got no delivery", msg)
	f := func(field string) string { return msg + ": " + field }
	require.Equal(t, want.ID, got.ID, f("ID"))
	require.Equal(t, want.MessageID, got.MessageID, f("MessageID"))
	require.Equal(t, want.EventID, got.EventID, f("EventID"))
	require.Equal(t, want.SubscriptionID, got.SubscriptionID, f("SubscriptionID"))
	require.Equal(t, want.DelivererID, got.DelivererID, f("DelivererID"))
	require.Equal(t, want.Status, got.Status, f("Status"))
	requireJSON(t, want.Payload, got.Payload, f("Payload"))
	requireTime(t, want.OccurredAt, got.OccurredAt, f("OccurredAt"))
	requireTime(t, want.CreatedAt, got.CreatedAt, f("CreatedAt"))
	requireTime(t, want.UpdatedAt, got.UpdatedAt, f("UpdatedAt"))
	requireTime(t, want.NextAttemptAt, got.NextAttemptAt, f("NextAttemptAt"))
	require.Equal(t, want.NextAttemptTrigger, got.NextAttemptTrigger, f("NextAttemptTrigger"))
	require.Equal(t, want.ExternalID, got.ExternalID, f("ExternalID"))
	require.Equal(t, want.LastError, got.LastError, f("LastError"))
	require.Lenf(t, got.Attempts, len(want.Attempts), "%s: number of attempts", msg)
	for i := range want.Attempts {
		requireAttempt(t, &want.Attempts[i], &got.Attempts[i], fmt.Sprintf("%s: Attempts[%d]", msg, i))
	}
}

// requireAttempt checks every field of got against want.
func requireAttempt(t *testing.T, want, got *outhook.Attempt, msg string) {
	t.Helper()
	f := func(field string) string { return msg + "." + field }
	require.Equal(t, want.Number, got.Number, f("Number"))
	require.Equal(t, want.Trigger, got.Trigger, f("Trigger"))
	requireTime(t, want.StartedAt, got.StartedAt, f("StartedAt"))
	require.Equal(t, want.DelivererID, got.DelivererID, f("DelivererID"))
	requireDuration(t, want.Duration, got.Duration, f("Duration"))
	require.Equal(t, want.Outcome, got.Outcome, f("Outcome"))
	require.Equal(t, want.Error, got.Error, f("Error"))
	require.Equal(t, want.ErrorClass, got.ErrorClass, f("ErrorClass"))
	require.Equal(t, want.StatusCode, got.StatusCode, f("StatusCode"))
	if want.Response != got.Response {
		// Byte strings of 16 KiB make unreadable diffs: say where they part.
		i := 0
		for i < len(want.Response) && i < len(got.Response) && want.Response[i] == got.Response[i] {
			i++
		}
		require.Failf(t, f("Response"), "the response excerpt must come back byte for byte: want %d bytes, got %d, first difference at byte %d (want %q, got %q)",
			len(want.Response), len(got.Response), i, excerpt(want.Response, i), excerpt(got.Response, i))
	}
	requireHeaders(t, want.RequestHeaders, got.RequestHeaders, f("RequestHeaders"))
	requireHeaders(t, want.ResponseHeaders, got.ResponseHeaders, f("ResponseHeaders"))
	require.Equal(t, want.ExternalID, got.ExternalID, f("ExternalID"))
	requireDuration(t, want.RetryAfter, got.RetryAfter, f("RetryAfter"))
	requireTime(t, want.NextAttemptAt, got.NextAttemptAt, f("NextAttemptAt"))
}

// requireHeaders checks an attempt's headers: the same names, spelled the
// same (a store does not canonicalise them), the same values in the same
// order, and nil apart from empty, for the map and for each value list.
func requireHeaders(t *testing.T, want, got map[string][]string, field string) {
	t.Helper()
	require.Equalf(t, want == nil, got == nil, "%s: a nil map must come back nil and an empty one empty (want %#v, got %#v)", field, want, got)
	require.Equal(t, want, got, field)
	for name, vs := range want {
		require.Equalf(t, vs == nil, got[name] == nil, "%s[%q]: a nil value list must come back nil and an empty one empty", field, name)
	}
}

func excerpt(s string, i int) string {
	return s[i:min(len(s), i+16)]
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// subIDs returns the IDs of subs, in order.
func subIDs(subs []*outhook.Subscription) []string {
	out := []string{}
	for _, s := range subs {
		out = append(out, s.ID)
	}
	return out
}

// deliveryIDs returns the IDs of ds, in order.
func deliveryIDs(ds []*outhook.Delivery) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// cloneSubscription returns a deep copy of s. The suite passes copies to the
// store and keeps the originals to compare with, so that a store sharing
// the values it is given cannot make a comparison pass by itself.
func cloneSubscription(s *outhook.Subscription) *outhook.Subscription {
	c := *s
	c.Events = slices.Clone(s.Events)
	c.Config = slices.Clone(s.Config)
	if s.Filter != nil {
		f := *s.Filter
		f.AnyOf = slices.Clone(s.Filter.AnyOf)
		c.Filter = &f
	}
	return &c
}

// cloneDelivery returns a deep copy of d.
func cloneDelivery(d *outhook.Delivery) *outhook.Delivery {
	c := *d
	c.Payload = slices.Clone(d.Payload)
	c.Attempts = slices.Clone(d.Attempts)
	for i := range c.Attempts {
		c.Attempts[i] = cloneAttempt(&c.Attempts[i])
	}
	return &c
}

// cloneAttempt returns a deep copy of a, header maps included.
func cloneAttempt(a *outhook.Attempt) outhook.Attempt {
	c := *a
	c.RequestHeaders = cloneHeaders(a.RequestHeaders)
	c.ResponseHeaders = cloneHeaders(a.ResponseHeaders)
	return c
}

func cloneHeaders(h map[string][]string) map[string][]string {
	if h == nil {
		return nil
	}
	out := make(map[string][]string, len(h))
	for k, v := range h {
		out[k] = slices.Clone(v) // nil stays nil, empty stays empty
	}
	return out
}

// fullSubscription has every field set, with values that trip up stores:
// patterns, JSON a jsonb column rewrites, text with quotes, commas and
// characters beyond ASCII, times with nanoseconds in a zone other than UTC.
func fullSubscription(id string, created time.Time) *outhook.Subscription {
	return &outhook.Subscription{
		ID:          id,
		Name:        `Ops "on-call", pager — naïve 日本 ✓`,
		Events:      []string{"incident.incident.created", "maintenance.*", "healthcheck-http.**", "incident.incident.resolved"},
		DelivererID: "webhook",
		Config: json.RawMessage(`{ "url": "https://hooks.example.com/in?sig=abc&x=1",
			"headers": {"X-Team": "ops", "A": "z"}, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			"retries": 3, "ratio": 0.25, "big": 12345678901234567890, "neg": -7,
			"tags": ["b", "a", "b"], "nested": {"ok": true, "none": null, "empty": {}, "list": []},
			"text": "é \u00fc 日本 <b>&amp; \"quoted\" \\ back" }`),
		Disabled:       true,
		DisabledReason: "destination gone: safehttp: POST https://hooks.example.com/in?sig=REDACTED: 410 Gone",
		Filter:         &outhook.Filter{Field: "incident.systemIds", AnyOf: []string{"sys-2", "a,b", `"quoted"`, "42", "true", "日本"}, Expr: celSource},
		Limits:         outhook.DeliveryLimits{Rate: 0.25, Burst: 3, MaxInFlight: 7},
		CreatedAt:      created.In(ist),
		UpdatedAt:      created.Add(90*time.Minute + 123_456_789),
	}
}

// celSource is a CEL filter that trips up stores: several lines, a tab,
// quotes of both kinds, backslash escapes (which must stay escapes), HTML
// characters JSON encoders escape, and text beyond ASCII.
const celSource = "payload.severity == \"critical\" &&\n\t'sys-1' in payload.systemIds &&\n" +
	"\tpayload.title.matches(\"^[A-Z]\\\\w+ <b>&amp;\") || payload.note == \"naïve 日本 ✓ \\u00e9\\n\" // comment"

// minimalSubscription has only the fields the client requires.
func minimalSubscription(id string, created time.Time, events ...string) *outhook.Subscription {
	return &outhook.Subscription{
		ID:          id,
		Events:      events,
		DelivererID: "slack",
		CreatedAt:   created,
		UpdatedAt:   created,
	}
}

// newDelivery is a pending delivery as routing creates it.
func newDelivery(id, messageID, eventID, subID string, created time.Time) *outhook.Delivery {
	return &outhook.Delivery{
		ID:             id,
		MessageID:      messageID,
		EventID:        eventID,
		SubscriptionID: subID,
		DelivererID:    "webhook",
		Status:         outhook.DeliveryPending,
		Payload:        json.RawMessage(`{"id":"inc-1","systemIds":["sys-1","sys-2"],"severity":"critical"}`),
		OccurredAt:     created.Add(-1500 * time.Millisecond),
		CreatedAt:      created,
		UpdatedAt:      created,
		NextAttemptAt:  created,
	}
}

// fullAttempts are three attempts with every field in use: a retryable
// HTTP failure whose response is binary, a timeout, and a manual success
// whose response is a full excerpt of multi-byte text.
func fullAttempts(start time.Time) []outhook.Attempt {
	binary := "\x00\x01\xff\xfe<html>\x00 invalid UTF-8: \xc3\x28 \xe2\x82 end\x00"
	var text strings.Builder // a full excerpt of valid multi-byte text
	for text.Len()+len("ok ✓ 日本 ") <= outhook.MaxResponseExcerpt {
		text.WriteString("ok ✓ 日本 ")
	}
	text.WriteString(strings.Repeat("x", outhook.MaxResponseExcerpt-text.Len()))
	return []outhook.Attempt{
		{
			Number:        1,
			Trigger:       outhook.TriggerScheduled,
			StartedAt:     start,
			DelivererID:   "webhook",
			Duration:      1_234_567_891,
			Outcome:       outhook.AttemptRetryable,
			Error:         "safehttp: POST https://hooks.example.com/in?sig=REDACTED: 503 Service Unavailable",
			ErrorClass:    outhook.ErrorClassHTTPStatus,
			StatusCode:    503,
			Response:      binary,
			RetryAfter:    90 * time.Second,
			NextAttemptAt: start.Add(90*time.Second + 1_500_001),
		},
		{
			Number:        2,
			Trigger:       outhook.TriggerScheduled,
			StartedAt:     start.Add(2 * time.Minute).In(ist),
			DelivererID:   "webhook",
			Duration:      30 * time.Second,
			Outcome:       outhook.AttemptRetryable,
			Error:         "safehttp: POST https://hooks.example.com/in?sig=REDACTED: timeout after 30s\n\"line two\" ünïcode",
			ErrorClass:    outhook.ErrorClassTimeout,
			NextAttemptAt: start.Add(7 * time.Minute).In(ist),
		},
		{
			Number:      3,
			Trigger:     outhook.TriggerManual,
			StartedAt:   start.Add(time.Hour),
			DelivererID: "jira", // the subscription's deliverer changed since
			Duration:    987 * time.Microsecond,
			Outcome:     outhook.AttemptSucceeded,
			StatusCode:  201,
			Response:    text.String(),
			ExternalID:  "OPS-1234",
		},
	}
}
