package adminhttp

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
)

func TestStatsCountsDeliveries(t *testing.T) {
	e := newEnv(t, allowAll)
	vault := e.createVault() // succeeds
	var fake outhook.Subscription
	e.do("POST", "/subscriptions", `{"events":["incident.incident.created"],"delivererId":"fake"}`).
		status(http.StatusCreated).decode(&fake)
	e.fake.SetDefault(outhooktest.FailPermanent(nil))
	e.emit("inc-1")
	e.emit("inc-2")
	e.waitIdle()

	sc := func(succeeded, failed int) outhook.StatusCounts {
		return outhook.StatusCounts{Total: succeeded + failed, Succeeded: succeeded, Failed: failed}
	}
	subs := []outhook.SubscriptionCounts{{SubscriptionID: vault.ID, StatusCounts: sc(2, 0)}, {SubscriptionID: fake.ID, StatusCounts: sc(0, 2)}}
	if fake.ID < vault.ID {
		subs[0], subs[1] = subs[1], subs[0]
	}
	want := outhook.DeliveryStats{
		StatusCounts:   sc(2, 2),
		ByEvent:        []outhook.EventCounts{{EventID: incidentEvent, StatusCounts: sc(2, 2)}},
		ByDeliverer:    []outhook.DelivererCounts{{DelivererID: "fake", StatusCounts: sc(0, 2)}, {DelivererID: "vault", StatusCounts: sc(2, 0)}},
		BySubscription: subs,
	}
	get := func(query string, hours int) outhook.DeliveryStats {
		t.Helper()
		var st outhook.DeliveryStats
		e.do("GET", "/stats"+query, "").status(http.StatusOK).matches("DeliveryStats").decode(&st)
		require.Equal(t, time.Duration(hours)*time.Hour, st.Until.Sub(st.Since), "the range of %s", query)
		require.WithinDuration(t, time.Now(), st.Until, time.Minute, "the range ends now")
		st.Since, st.Until = time.Time{}, time.Time{}
		return st
	}
	require.Equal(t, want, get("", 24), "the last 24 hours by default")
	require.Equal(t, want, get("?hours=1", 1))
	require.Equal(t, want, get("?hours=720", 720))

	one := get("?subscriptionId="+url.QueryEscape(vault.ID), 24)
	require.Equal(t, vault.ID, one.SubscriptionID)
	require.Equal(t, sc(2, 0), one.StatusCounts)
	require.Equal(t, []outhook.SubscriptionCounts{{SubscriptionID: vault.ID, StatusCounts: sc(2, 0)}}, one.BySubscription)

	// No deliveries: zeros and empty lists, not null.
	none := e.do("GET", "/stats?subscriptionId=sub_none", "").status(http.StatusOK).matches("DeliveryStats")
	require.Contains(t, none.Body.String(), `"byEvent":[]`)
	var st outhook.DeliveryStats
	none.decode(&st)
	require.Zero(t, st.Total)
	require.False(t, st.Truncated)
}

func TestStatsBadInput(t *testing.T) {
	e := newEnv(t, allowAll)
	for _, tc := range []struct{ query, field string }{
		{"hours=0", "hours"},
		{"hours=721", "hours"},
		{"hours=-1", "hours"},
		{"hours=1.5", "hours"},
		{"hours=01", "hours"},
		{"hours=%2B1", "hours"},
		{"hours=24h", "hours"},
		{"hours=99999999999999999999", "hours"},
		{"hours=1&hours=2", "hours"},
		{"since=2026-01-01T00:00:00Z", "since"},
		{"subscription=sub_1", "subscription"},
	} {
		p := e.do("GET", "/stats?"+tc.query, "").problem(http.StatusBadRequest)
		require.Equal(t, TypeValidation, p.Type, tc.query)
		require.Equal(t, []string{tc.field}, fields(p), tc.query)
		require.Equal(t, "/stats", p.Instance, tc.query)
	}
	p := e.do("GET", "/stats?hours=0", "").problem(http.StatusBadRequest)
	require.Equal(t, "must be an integer from 1 to 720", p.Errors[0].Detail)
}

func TestStatsAuthorization(t *testing.T) {
	e := newEnv(t, byHeader)
	e.do("GET", "/stats", "").problem(http.StatusUnauthorized)
	e.do("GET", "/stats", "", "X-Role", "viewer").status(http.StatusOK).matches("DeliveryStats")
	e.do("GET", "/stats", "", "X-Role", "guest").problem(http.StatusForbidden)
}
