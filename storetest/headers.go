package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

// testAttemptHeaders: an attempt's request and response headers come back
// as recorded, whether the attempt came with CreateDeliveries or
// UpdateDelivery: names spelled as given (canonical or not, the store does
// not canonicalise them), values in their order, repeated and empty values,
// text beyond ASCII; a nil map nil and an empty map empty; and the store
// keeps copies: changing the maps given or returned changes nothing stored.
func testAttemptHeaders(t *testing.T, s outhook.Store) {
	ctx := t.Context()
	full := func() map[string][]string {
		return map[string][]string{
			"Content-Type":              {"application/json"},
			"Webhook-Id":                {"dlv_1"},
			"Authorization":             {outhook.Redacted},
			"x-lower-case":              {"kept as given"},
			"X-UPPER":                   {"Kept"},
			"Accept":                    {"text/plain", "application/json", "*/*"}, // not sorted: order kept
			"X-Repeated":                {"same", "same"},
			"X-Empty-Value":             {""},
			"X-No-Values":               {},
			"X-Unicode":                 {`ünïcode "quoted", ✓ 日本`},
			"X-Json-Like":               {`{"a":[1,2]}`, `\u0000`},
			"Retry-After":               {"120"},
			"Content-Length":            {"42"},
			"Www-Authenticate":          {outhook.Redacted},
			"Strict-Transport-Security": {"max-age=63072000"},
		}
	}
	created := newDelivery("dlv_1", "msg_1", "incident.incident.created", "sub_1", at(0))
	created.Status = outhook.DeliveryPending
	created.Attempts = []outhook.Attempt{{
		Number: 1, Trigger: outhook.TriggerScheduled, StartedAt: at(1), DelivererID: "webhook", Duration: time.Second,
		Outcome: outhook.AttemptRetryable, Error: "503", ErrorClass: outhook.ErrorClassHTTPStatus, StatusCode: 503,
		RequestHeaders: full(), ResponseHeaders: map[string][]string{"Retry-After": {"5"}},
	}}
	other := newDelivery("dlv_2", "msg_1", "incident.incident.created", "sub_2", at(0))
	createDeliveries(t, s, created, other)
	requireDelivery(t, created, getDelivery(t, s, "dlv_1"), "headers of an attempt given to CreateDeliveries")

	attempts := []outhook.Attempt{
		// A timeout: request headers, no response.
		{Number: 1, Trigger: outhook.TriggerScheduled, StartedAt: at(2), DelivererID: "webhook", Duration: 30 * time.Second,
			Outcome: outhook.AttemptRetryable, Error: "timeout", ErrorClass: outhook.ErrorClassTimeout,
			RequestHeaders: full(), NextAttemptAt: at(40)},
		// An answer with headers.
		{Number: 2, Trigger: outhook.TriggerScheduled, StartedAt: at(41), DelivererID: "webhook", Duration: time.Millisecond,
			Outcome: outhook.AttemptRetryable, Error: "429", ErrorClass: outhook.ErrorClassHTTPStatus, StatusCode: 429,
			RequestHeaders: full(), ResponseHeaders: full(), NextAttemptAt: at(200)},
		// A request and an answer without any header: empty, not nil.
		{Number: 3, Trigger: outhook.TriggerManual, StartedAt: at(201), DelivererID: "webhook", Duration: time.Millisecond,
			Outcome: outhook.AttemptRetryable, Error: "500", ErrorClass: outhook.ErrorClassHTTPStatus, StatusCode: 500,
			RequestHeaders: map[string][]string{}, ResponseHeaders: map[string][]string{}, NextAttemptAt: at(300)},
		// A deliverer that reports no headers at all: nil.
		{Number: 4, Trigger: outhook.TriggerScheduled, StartedAt: at(301), DelivererID: "custom", Duration: time.Millisecond,
			Outcome: outhook.AttemptSucceeded},
	}
	for i := range attempts {
		u := outhook.DeliveryUpdate{Status: outhook.DeliveryPending, NextAttemptAt: attempts[i].NextAttemptAt, LastError: attempts[i].Error, UpdatedAt: attempts[i].StartedAt}
		if i == len(attempts)-1 {
			u = outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded, UpdatedAt: at(302)}
		}
		update(t, s, other, &attempts[i], u)
	}
	got := getDelivery(t, s, "dlv_2")
	requireDelivery(t, other, got, "headers of attempts given to UpdateDelivery")
	list := listDeliveries(t, s, outhook.DeliveryQuery{SubscriptionID: "sub_2"})
	require.Len(t, list, 1)
	requireDelivery(t, other, list[0], "ListDeliveries returns the headers too")

	// Changing what was given or returned changes nothing stored.
	a := outhook.Attempt{Number: 5, Trigger: outhook.TriggerScheduled, StartedAt: at(400), DelivererID: "webhook",
		Outcome: outhook.AttemptSucceeded, RequestHeaders: full(), ResponseHeaders: full()}
	want := cloneAttempt(&a)
	require.NoError(t, s.UpdateDelivery(ctx, "dlv_2", &a, outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded, UpdatedAt: at(401)}))
	a.RequestHeaders["Accept"][0] = "changed"
	a.RequestHeaders["X-Added"] = []string{"added"}
	delete(a.ResponseHeaders, "Content-Type")
	got = getDelivery(t, s, "dlv_2")
	require.Len(t, got.Attempts, 5)
	requireAttempt(t, &want, &got.Attempts[4], "an attempt changed by its caller after UpdateDelivery")
	got.Attempts[4].RequestHeaders["Accept"][1] = "changed"
	got.Attempts[4].ResponseHeaders["X-Added"] = []string{"added"}
	got = getDelivery(t, s, "dlv_2")
	requireAttempt(t, &want, &got.Attempts[4], "an attempt changed by a reader of GetDelivery")

	// Concurrent updates of distinct deliveries, which a store may group
	// into one statement: each keeps its own headers, nil or empty as given.
	const n = 12
	ds := make([]*outhook.Delivery, n)
	for i := range ds {
		ds[i] = newDelivery(fmt.Sprintf("dlv_c%02d", i), "msg_2", "incident.incident.created", "sub_3", at(500))
	}
	createDeliveries(t, s, ds...)
	as := make([]outhook.Attempt, n)
	var wg sync.WaitGroup
	for i := range as {
		as[i] = outhook.Attempt{Number: 1, Trigger: outhook.TriggerScheduled, StartedAt: at(501), DelivererID: "webhook",
			Outcome: outhook.AttemptSucceeded, StatusCode: 200}
		switch i % 3 {
		case 0:
			as[i].RequestHeaders = map[string][]string{"X-Delivery": {ds[i].ID}, "x-index": {fmt.Sprint(i), "again"}}
			as[i].ResponseHeaders = map[string][]string{"X-Echo": {ds[i].ID}}
		case 1:
			as[i].RequestHeaders, as[i].ResponseHeaders = map[string][]string{}, map[string][]string{}
		}
		arg := cloneAttempt(&as[i])
		wg.Go(func() {
			require.NoError(t, s.UpdateDelivery(ctx, ds[i].ID, &arg, outhook.DeliveryUpdate{Status: outhook.DeliverySucceeded, UpdatedAt: at(502)}))
		})
	}
	wg.Wait()
	for i, d := range ds {
		got := getDelivery(t, s, d.ID)
		require.Len(t, got.Attempts, 1)
		requireAttempt(t, &as[i], &got.Attempts[0], "concurrent update of "+d.ID)
	}
}
