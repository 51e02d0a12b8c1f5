package adminhttp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
)

type deliveryPage struct {
	Items      []deliverySummary `json:"items"`
	NextCursor string            `json:"nextCursor"`
}

func TestDeliveries(t *testing.T) {
	e := newEnv(t, allowAll)
	vaultSub := e.createVault()
	var fakeSub outhook.Subscription
	e.do("POST", "/subscriptions", `{"events":["incident.incident.created"],"delivererId":"fake"}`).status(http.StatusCreated).decode(&fakeSub)
	e.vault.setFail(true) // permanent failures quoting the secret
	for i := range 3 {
		e.emit(fmt.Sprintf("inc-%d", i))
	}
	e.waitIdle()

	// All six, newest first, without attempts.
	var all deliveryPage
	e.do("GET", "/deliveries", "").status(http.StatusOK).matches("DeliveryList").decode(&all)
	require.Len(t, all.Items, 6)
	require.Empty(t, all.NextCursor)
	for _, d := range all.Items {
		require.Nil(t, d.Attempts)
		require.Equal(t, 1, d.AttemptCount)
	}

	// Filters.
	var failed deliveryPage
	e.do("GET", "/deliveries?status=failed&subscriptionId="+vaultSub.ID+"&eventId="+incidentEvent, "").
		status(http.StatusOK).matches("DeliveryList").decode(&failed)
	require.Len(t, failed.Items, 3)
	for _, d := range failed.Items {
		require.Equal(t, outhook.DeliveryFailed, d.Status)
		require.Equal(t, vaultSub.ID, d.SubscriptionID)
		require.Equal(t, "vault: https://vault.example/hook refused token [secret]", d.LastError)
	}
	var byMessage deliveryPage
	e.do("GET", "/deliveries?messageId="+failed.Items[0].MessageID, "").status(http.StatusOK).decode(&byMessage)
	require.Len(t, byMessage.Items, 2)

	// One delivery, with its attempts, secrets removed.
	var d outhook.Delivery
	e.do("GET", "/deliveries/"+failed.Items[0].ID, "").status(http.StatusOK).matches("Delivery").decode(&d)
	require.Len(t, d.Attempts, 1)
	require.Equal(t, "bad token [secret]", d.Attempts[0].Response)
	require.Contains(t, d.Attempts[0].Error, "[secret]")
	var payload IncidentCreated
	require.NoError(t, json.Unmarshal(d.Payload, &payload))
	require.Equal(t, []string{"sys-1"}, payload.SystemIDs) // events are routed in parallel: any of the three

	// Redeliver: 202 with the delivery pending, then it succeeds.
	e.vault.setFail(false)
	hold, inside := make(chan struct{}), make(chan struct{})
	e.vault.mu.Lock()
	e.vault.hold, e.vault.inside = hold, inside // the attempt waits until the answer is read
	e.vault.mu.Unlock()
	var re outhook.Delivery
	e.do("POST", "/deliveries/"+d.ID+"/redeliver", "").status(http.StatusAccepted).matches("Delivery").decode(&re)
	<-inside
	close(hold)
	require.Equal(t, d.ID, re.ID)
	require.Equal(t, outhook.DeliveryPending, re.Status)
	require.Equal(t, outhook.TriggerManual, re.NextAttemptTrigger)
	e.waitIdle()
	e.do("GET", "/deliveries/"+d.ID, "").status(http.StatusOK).decode(&re)
	require.Equal(t, outhook.DeliverySucceeded, re.Status)
	require.Len(t, re.Attempts, 2)
	require.Equal(t, outhook.TriggerManual, re.Attempts[1].Trigger)
	require.Equal(t, secretToken, e.vault.lastToken())

	// Not found, bad queries.
	require.Equal(t, TypeNotFound, e.do("GET", "/deliveries/dlv_nope", "").problem(404).Type)
	require.Equal(t, TypeNotFound, e.do("POST", "/deliveries/dlv_nope/redeliver", "").problem(404).Type)
	for q, field := range map[string]string{"status=lost": "status", "limit=-1": "limit", "cursor=x": "cursor", "systemId=1": "systemId"} {
		p := e.do("GET", "/deliveries?"+q, "").problem(400)
		require.Equal(t, []string{field}, fields(p), q)
	}
}

func TestDeliveriesPaging(t *testing.T) {
	e := newEnv(t, allowAll)
	e.do("POST", "/subscriptions", `{"events":["incident.incident.created"],"delivererId":"fake"}`).status(http.StatusCreated)
	for i := range 7 {
		e.emit(fmt.Sprintf("inc-%d", i))
	}
	e.waitIdle()
	want, err := e.client.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, want, 7)

	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 7)
		var page deliveryPage
		e.do("GET", "/deliveries?limit=3&cursor="+cursor, "").status(http.StatusOK).decode(&page)
		for _, d := range page.Items {
			seen = append(seen, d.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		if pages == 0 {
			// Newer deliveries arrive between pages: the next page still
			// starts after the last one shown.
			e.emit("inc-new")
			e.waitIdle()
		}
	}
	var ids []string
	for _, d := range want {
		ids = append(ids, d.ID)
	}
	require.Equal(t, ids, seen)
}

// TestDeliveriesTimeRange: since and until bound the creation time, since
// included and until not; a time that does not parse is a 400 naming it.
func TestDeliveriesTimeRange(t *testing.T) {
	e := newEnv(t, allowAll)
	e.do("POST", "/subscriptions", `{"events":["incident.incident.created"],"delivererId":"fake"}`).status(http.StatusCreated)
	for i := range 4 {
		e.emit(fmt.Sprintf("inc-%d", i))
		e.waitIdle()
	}
	all, err := e.client.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, all, 4) // newest first
	since := url.QueryEscape(all[2].CreatedAt.Format(time.RFC3339Nano))
	until := url.QueryEscape(all[0].CreatedAt.Format(time.RFC3339Nano))
	var page deliveryPage
	e.do("GET", "/deliveries?since="+since+"&until="+until, "").status(http.StatusOK).matches("DeliveryList").decode(&page)
	var ids []string
	for _, d := range page.Items {
		ids = append(ids, d.ID)
	}
	require.Equal(t, []string{all[1].ID, all[2].ID}, ids)
	for _, field := range []string{"since", "until"} {
		p := e.do("GET", "/deliveries?"+field+"=yesterday", "").problem(http.StatusBadRequest)
		require.Equal(t, []string{field}, fields(p))
	}
}

// TestRecoverSubscription: recover redelivers the failed deliveries in
// batches of limit, nextCursor carrying on, and a repeat sends nothing;
// bad bodies are 400s naming the field, an unknown subscription a 404.
func TestRecoverSubscription(t *testing.T) {
	e := newEnv(t, allowAll)
	var sub outhook.Subscription
	e.do("POST", "/subscriptions", `{"events":["incident.incident.created"],"delivererId":"fake"}`).status(http.StatusCreated).decode(&sub)
	e.fake.SetDefault(outhooktest.FailPermanent(nil))
	for i := range 5 {
		e.emit(fmt.Sprintf("inc-%d", i))
	}
	e.waitIdle()
	e.fake.SetDefault(outhooktest.Succeed())

	path := "/subscriptions/" + sub.ID + "/recover"
	total, cursor := 0, ""
	for calls := 0; ; calls++ {
		require.Less(t, calls, 5, "recovery does not end")
		var res recoverResult
		e.do("POST", path, fmt.Sprintf(`{"limit":2,"cursor":%q}`, cursor)).status(http.StatusOK).matches("RecoverResult").decode(&res)
		require.LessOrEqual(t, res.Redelivered, 2)
		total += res.Redelivered
		if res.NextCursor == "" {
			break
		}
		cursor = res.NextCursor
	}
	require.Equal(t, 5, total)
	e.waitIdle()
	failed, err := e.client.Deliveries(context.Background(), outhook.DeliveryQuery{Status: outhook.DeliveryFailed})
	require.NoError(t, err)
	require.Empty(t, failed)
	var res recoverResult
	e.do("POST", path, "").status(http.StatusOK).decode(&res)
	require.Zero(t, res.Redelivered, "nothing failed is left")

	for body, field := range map[string]string{
		`{"since":"yesterday"}`: "since",
		`{"since":"2026-11-29T10:00:00Z","until":"2026-11-29T09:00:00Z"}`: "until",
		`{"limit":10001}`:    "limit",
		`{"cursor":"x"}`:     "cursor",
		`{"subscription":1}`: "subscription",
	} {
		p := e.do("POST", path, body).problem(http.StatusBadRequest)
		require.Equal(t, []string{field}, fields(p), body)
	}
	e.do("POST", "/subscriptions/sub_missing/recover", "").problem(http.StatusNotFound)
}

// TestRedeliverPending: a delivery in flight cannot be redelivered (409),
// and the refused request changes nothing.
func TestRedeliverPending(t *testing.T) {
	e := newEnv(t, allowAll)
	e.createVault()
	hold, inside := make(chan struct{}), make(chan struct{})
	e.vault.mu.Lock()
	e.vault.hold, e.vault.inside = hold, inside
	e.vault.mu.Unlock()
	e.emit("inc-1")
	<-inside // the attempt has started: the delivery is pending
	ds, err := e.client.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	p := e.do("POST", "/deliveries/"+ds[0].ID+"/redeliver", "").problem(http.StatusConflict)
	require.Equal(t, TypeConflict, p.Type)
	close(hold)
	e.waitIdle()
	d, err := e.client.Delivery(context.Background(), ds[0].ID)
	require.NoError(t, err)
	require.Equal(t, outhook.DeliverySucceeded, d.Status)
	require.Len(t, d.Attempts, 1)
}

func TestFailedEvents(t *testing.T) {
	e := newEnv(t, allowAll)
	e.do("POST", "/subscriptions", `{"events":["broken.broken"],"delivererId":"fake"}`).status(http.StatusCreated)
	require.NoError(t, outhook.EmitHook(context.Background(), e.client, brokenHook, Maintenance{WindowID: "w-1"}))
	e.waitIdle()
	var list struct {
		Items []failedEventView `json:"items"`
	}
	e.do("GET", "/failed-events?limit=10", "").status(http.StatusOK).matches("FailedEventList").decode(&list)
	require.Len(t, list.Items, 1)
	ev := list.Items[0]
	require.Equal(t, "broken", ev.HookID)
	require.Equal(t, "integration.broken.broken", ev.Group)
	require.JSONEq(t, `{"windowId":"w-1"}`, string(ev.Payload))
	require.Equal(t, 3, ev.Attempts)
	require.NotEmpty(t, ev.Errors)
	require.Contains(t, ev.Errors[0].Error, "transform broke")

	require.Equal(t, []string{"limit"}, fields(e.do("GET", "/failed-events?limit=0", "").problem(400)))
}

// TestStoppedClient: calls on a stopped client are 503.
func TestStoppedClient(t *testing.T) {
	e := newEnv(t, allowAll)
	s := e.createVault()
	require.NoError(t, e.client.Stop(context.Background()))
	p := e.do("POST", "/subscriptions/"+s.ID+"/test", "").problem(http.StatusServiceUnavailable)
	require.Equal(t, "about:blank", p.Type)
	e.do("POST", "/subscriptions", vaultSubscription).problem(http.StatusServiceUnavailable)
}

// TestDisabledReasonScrubbed: outhook disables a subscription whose
// destination is gone, with the deliverer's error as the reason; a secret
// the deliverer quoted there is not shown.
func TestDisabledReasonScrubbed(t *testing.T) {
	e := newEnv(t, allowAll)
	s := e.createVault()
	e.vault.mu.Lock()
	e.vault.gone = true
	e.vault.mu.Unlock()
	e.emit("inc-1")
	e.waitIdle()
	var got outhook.Subscription
	e.do("GET", "/subscriptions/"+s.ID, "").status(http.StatusOK).decode(&got)
	require.True(t, got.Disabled)
	require.Equal(t, "destination gone: vault: token [secret] is gone", got.DisabledReason)
	var list struct {
		Items []outhook.Subscription `json:"items"`
	}
	e.do("GET", "/subscriptions", "").status(http.StatusOK).decode(&list)
	require.Equal(t, got.DisabledReason, list.Items[0].DisabledReason)
	var page deliveryPage
	e.do("GET", "/deliveries", "").status(http.StatusOK).decode(&page)
	require.Equal(t, "vault: token [secret] is gone", page.Items[0].LastError)
	// An update without "disabled" keeps it disabled, reason and all.
	e.do("PUT", "/subscriptions/"+s.ID, vaultSubscription).status(http.StatusOK).decode(&got)
	require.True(t, got.Disabled)
	require.Equal(t, "destination gone: vault: token [secret] is gone", got.DisabledReason)
}

// TestReplayMessage: replay sends the event again as new deliveries (202);
// an unknown message is a 404, an unknown body field a 400.
func TestReplayMessage(t *testing.T) {
	e := newEnv(t, allowAll)
	e.do("POST", "/subscriptions", `{"events":["incident.incident.created"],"delivererId":"fake"}`).status(http.StatusCreated)
	e.emit("inc-1")
	e.waitIdle()
	first, err := e.client.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, first, 1)
	var res replayResult
	e.do("POST", "/messages/"+first[0].MessageID+"/replay", "").status(http.StatusAccepted).matches("ReplayResult").decode(&res)
	require.Equal(t, "incident.incident.created", res.EventID)
	require.Len(t, res.Deliveries, 1)
	require.NotEqual(t, first[0].ID, res.Deliveries[0])
	e.waitIdle()
	var d outhook.Delivery
	e.do("GET", "/deliveries/"+res.Deliveries[0], "").status(http.StatusOK).decode(&d)
	require.Equal(t, first[0].MessageID, d.MessageID)
	require.Equal(t, outhook.DeliverySucceeded, d.Status)

	e.do("POST", "/messages/msg_unknown/replay", "").problem(http.StatusNotFound)
	p := e.do("POST", "/messages/"+first[0].MessageID+"/replay", `{"event":"x"}`).problem(http.StatusBadRequest)
	require.Equal(t, []string{"event"}, fields(p))
}
