package adminhttp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

func TestSubscriptionLifecycle(t *testing.T) {
	e := newEnv(t, allowAll)

	// Create: 201, a Location, the secret masked.
	r := e.do("POST", "/subscriptions", vaultSubscription).status(http.StatusCreated).matches("Subscription")
	var s outhook.Subscription
	r.decode(&s)
	require.Equal(t, "subscriptions/"+s.ID, r.Header().Get("Location"))
	require.JSONEq(t, `{"url":"https://vault.example/hook","token":"[secret]"}`, string(s.Config))
	require.Equal(t, []string{"incident.**"}, s.Events)
	require.Equal(t, "ops", s.Name)
	require.False(t, s.Disabled)

	// Read, list.
	var got outhook.Subscription
	e.do("GET", "/subscriptions/"+s.ID, "").status(http.StatusOK).matches("Subscription").decode(&got)
	require.Equal(t, s, got)
	var list struct {
		Items      []outhook.Subscription `json:"items"`
		NextCursor string                 `json:"nextCursor"`
	}
	e.do("GET", "/subscriptions", "").status(http.StatusOK).matches("SubscriptionList").decode(&list)
	require.Equal(t, []outhook.Subscription{s}, list.Items)
	require.Empty(t, list.NextCursor)

	// Update with what was read, secret mask included: the stored secret
	// stays, and the test event carries it.
	got.Name = "ops-2"
	body, err := json.Marshal(got)
	require.NoError(t, err)
	var upd outhook.Subscription
	e.do("PUT", "/subscriptions/"+s.ID, string(body)).status(http.StatusOK).matches("Subscription").decode(&upd)
	require.Equal(t, "ops-2", upd.Name)
	require.Equal(t, s.CreatedAt, upd.CreatedAt)
	var res testResult
	e.do("POST", "/subscriptions/"+s.ID+"/test", "").status(http.StatusOK).matches("TestResult").decode(&res)
	require.True(t, res.Succeeded)
	require.Equal(t, outhook.TriggerTest, res.Attempt.Trigger)
	require.Equal(t, secretToken, e.vault.lastToken())

	// A new secret replaces the old one.
	e.do("PUT", "/subscriptions/"+s.ID, strings.Replace(vaultSubscription, secretToken, otherToken, 1)).status(http.StatusOK)
	e.do("POST", "/subscriptions/"+s.ID+"/test", `{}`).status(http.StatusOK)
	require.Equal(t, otherToken, e.vault.lastToken())

	// Disable, then an update without "disabled" keeps it disabled; enable.
	var dis outhook.Subscription
	e.do("POST", "/subscriptions/"+s.ID+"/disable", "").status(http.StatusOK).matches("Subscription").decode(&dis)
	require.True(t, dis.Disabled)
	e.do("PUT", "/subscriptions/"+s.ID, vaultSubscription).status(http.StatusOK).decode(&dis)
	require.True(t, dis.Disabled)
	var en outhook.Subscription
	e.do("POST", "/subscriptions/"+s.ID+"/enable", `{}`).status(http.StatusOK).decode(&en)
	require.False(t, en.Disabled)

	// Delete: 204, then 404 everywhere.
	r = e.do("DELETE", "/subscriptions/"+s.ID, "").status(http.StatusNoContent)
	require.Empty(t, r.Body.String())
	for _, req := range [][2]string{
		{"GET", ""}, {"PUT", ""}, {"DELETE", ""}, {"POST", "/enable"}, {"POST", "/disable"}, {"POST", "/test"},
	} {
		body := ""
		if req[0] == "PUT" {
			body = vaultSubscription
		}
		p := e.do(req[0], "/subscriptions/"+s.ID+req[1], body).problem(http.StatusNotFound)
		require.Equal(t, TypeNotFound, p.Type, "%s %s", req[0], req[1])
		require.Contains(t, p.Detail, s.ID)
	}
}

func TestSubscriptionsPaging(t *testing.T) {
	e := newEnv(t, allowAll)
	var ids []string
	for i := range 5 {
		var s outhook.Subscription
		e.do("POST", "/subscriptions", fmt.Sprintf(`{"id":"sub_%d","events":["maintenance.started"],"delivererId":"fake"}`, i)).
			status(http.StatusCreated).decode(&s)
		ids = append(ids, s.ID)
	}
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		var page struct {
			Items      []outhook.Subscription `json:"items"`
			NextCursor string                 `json:"nextCursor"`
		}
		e.do("GET", "/subscriptions?limit=2&cursor="+cursor, "").status(http.StatusOK).matches("SubscriptionList").decode(&page)
		require.LessOrEqual(t, len(page.Items), 2)
		for _, s := range page.Items {
			seen = append(seen, s.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	require.Equal(t, ids, seen)

	// A cursor whose subscription was deleted still goes on after it.
	var first struct {
		NextCursor string `json:"nextCursor"`
	}
	e.do("GET", "/subscriptions?limit=2", "").status(http.StatusOK).decode(&first)
	e.do("DELETE", "/subscriptions/"+ids[1], "").status(http.StatusNoContent)
	var rest struct {
		Items []outhook.Subscription `json:"items"`
	}
	e.do("GET", "/subscriptions?cursor="+first.NextCursor, "").status(http.StatusOK).decode(&rest)
	require.NotEmpty(t, rest.Items)
	require.NotEqual(t, ids[0], rest.Items[0].ID)
}

// TestSubscriptionValidation: bad requests are 400 problem details naming
// the fields at fault, and change nothing.
func TestSubscriptionValidation(t *testing.T) {
	e := newEnv(t, allowAll)
	existing := e.createVault()
	before := e.state()

	cases := []struct {
		name        string
		contentType string
		body        string
		status      int
		fields      []string
	}{
		{"unknown field", "", `{"events":["maintenance.started"],"delivererId":"fake","colour":"red"}`, 400, []string{"colour"}},
		{"unknown filter field", "", `{"events":["maintenance.started"],"delivererId":"fake","filter":{"field":"a","anyOf":["b"],"x":1}}`, 400, []string{"x"}},
		{"wrong type", "", `{"events":"maintenance.started","delivererId":"fake"}`, 400, []string{"events"}},
		{"not JSON", "", `{"events":`, 400, []string{"body"}},
		{"trailing data", "", `{"events":["maintenance.started"],"delivererId":"fake"} {}`, 400, []string{"body"}},
		{"empty body", "", ` `, 400, []string{"body"}},
		{"no events", "", `{"delivererId":"fake"}`, 400, []string{"events"}},
		{"unknown event", "", `{"events":["maintenance.started","nope.nope"],"delivererId":"fake"}`, 400, []string{"events[1]"}},
		{"bad pattern", "", `{"events":["a.**.b"],"delivererId":"fake"}`, 400, []string{"events[0]"}},
		{"no deliverer", "", `{"events":["maintenance.started"]}`, 400, []string{"delivererId"}},
		{"unknown deliverer", "", `{"events":["maintenance.started"],"delivererId":"carrier-pigeon"}`, 400, []string{"delivererId"}},
		{"config fields", "", `{"events":["incident.**"],"delivererId":"vault","config":{"url":"not a url"}}`, 400, []string{"config.url", "config.token"}},
		{"config unknown field", "", `{"events":["incident.**"],"delivererId":"vault","config":{"url":"https://x.example","token":"` + secretToken + `","extra":1}}`, 400, []string{"config"}},
		{"deliverer quotes the secret", "", strings.Replace(vaultSubscription, secretToken, "bad-"+secretToken, 1), 400, []string{"config"}},
		{"bad filter", "", `{"events":["maintenance.started"],"delivererId":"fake","filter":{"field":"a..b","anyOf":["x"]}}`, 400, []string{"filter.field"}},
		{"bad id", "", `{"id":"no spaces","events":["maintenance.started"],"delivererId":"fake"}`, 400, []string{"id"}},
		{"taken id", "", `{"id":"` + existing.ID + `","events":["maintenance.started"],"delivererId":"fake"}`, 409, nil},
		{"not JSON media type", "text/plain", `{"events":["maintenance.started"],"delivererId":"fake"}`, 415, nil},
		{"too large", "", `{"name":"` + strings.Repeat("x", 5000) + `","events":["maintenance.started"],"delivererId":"fake"}`, 413, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ct := c.contentType
			if ct == "" {
				ct = "application/json"
			}
			e.t = t
			p := e.do("POST", "/subscriptions", c.body, "Content-Type", ct).problem(c.status)
			if c.status == 400 {
				require.Equal(t, TypeValidation, p.Type)
				require.Equal(t, c.fields, fields(p), "%+v", p)
			}
			if c.status == 409 {
				require.Equal(t, TypeConflict, p.Type)
			}
		})
	}
	e.t = t

	// The same on update, plus an ID that differs from the path's.
	p := e.do("PUT", "/subscriptions/"+existing.ID, `{"id":"sub_other","events":["maintenance.started"],"delivererId":"fake"}`).problem(400)
	require.Equal(t, []string{"id"}, fields(p))
	p = e.do("PUT", "/subscriptions/"+existing.ID, `{"events":["incident.**"],"delivererId":"vault","config":{"url":"https://x.example","token":"bad-[secret]"}}`).problem(400)
	require.Equal(t, []string{"config"}, fields(p))
	p = e.do("PUT", "/subscriptions/"+existing.ID, `{"events":["incident.**"],"delivererId":"vault","config":{"url":"::"}}`).problem(400)
	require.Equal(t, []string{"config.url", "config.token"}, fields(p))
	// Actions without a body take none.
	p = e.do("POST", "/subscriptions/"+existing.ID+"/disable", `{"now":true}`).problem(400)
	require.Equal(t, []string{"now"}, fields(p))

	require.Equal(t, before, e.state())
}

func TestSubscriptionQueryValidation(t *testing.T) {
	e := newEnv(t, allowAll)
	for q, field := range map[string]string{
		"limit=0":            "limit",
		"limit=501":          "limit",
		"limit=ten":          "limit",
		"limit=1&limit=2":    "limit",
		"cursor=%%%":         "query",
		"cursor=bm90IGpzb24": "cursor",
		"sort=name":          "sort",
	} {
		p := e.do("GET", "/subscriptions?"+q, "").problem(400)
		require.Equal(t, []string{field}, fields(p), q)
	}
}

// TestSendTestFailure: a destination that refuses the test is a 200 whose
// attempt says why, without the secret the deliverer quoted.
func TestSendTestFailure(t *testing.T) {
	e := newEnv(t, allowAll)
	s := e.createVault()
	e.vault.setFail(true)
	var res testResult
	r := e.do("POST", "/subscriptions/"+s.ID+"/test", "").status(http.StatusOK).matches("TestResult")
	r.decode(&res)
	require.False(t, res.Succeeded)
	require.Equal(t, outhook.AttemptPermanent, res.Attempt.Outcome)
	require.Equal(t, 401, res.Attempt.StatusCode)
	require.Equal(t, "vault: https://vault.example/hook refused token [secret]", res.Attempt.Error)
	require.Equal(t, "bad token [secret]", res.Attempt.Response)
	require.Equal(t, secretToken, e.vault.lastToken(), "the deliverer got the real secret")
}

func TestScrub(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"token abcdefgh refused", "token [secret] refused"},
		{"xxabcdefghxx", "xx[secret]xx"},                                     // long secrets go wherever they are
		{"key ab12 refused; ab123 fine", "key [secret] refused; ab123 fine"}, // short ones only as words
		{"ab12", "[secret]"},
		{"one line", "one line"},
	} {
		require.Equal(t, c.want, scrub(c.in, []string{"abcdefgh", "ab12", "on"}), c.in)
	}
	require.ElementsMatch(t, []string{"s1", "s2"}, maskedValues(
		json.RawMessage(`{"a":"s1","b":[{"c":"s2","d":"x"}],"e":"y"}`),
		json.RawMessage(`{"a":"[secret]","b":[{"c":"[secret]","d":"x"}],"e":"y"}`)))
	require.Equal(t, []string{"not json"}, maskedValues(json.RawMessage(`not json`), json.RawMessage(`"[secret]"`)))
}

// TestFilterExpression: a CEL filter that does not type-check against the
// event's schema is a 400 naming filter.expr and the position.
func TestFilterExpression(t *testing.T) {
	e := newEnv(t, allowAll)
	p := e.do("POST", "/subscriptions", `{"events":["incident.incident.created"],"delivererId":"fake",
		"filter":{"expr":"payload.severity == \"critical\" &&\n  payload.sevrity == 1"}}`).problem(400)
	require.Equal(t, []string{"filter.expr"}, fields(p))
	require.Equal(t, 2, p.Errors[0].Line, "%+v", p)
	require.Positive(t, p.Errors[0].Column)

	var s outhook.Subscription
	e.do("POST", "/subscriptions", `{"events":["incident.incident.created"],"delivererId":"fake",
		"filter":{"expr":"payload.severity == \"critical\""}}`).status(http.StatusCreated).matches("Subscription").decode(&s)
	require.Equal(t, `payload.severity == "critical"`, s.Filter.Expr)
}

// TestSubscriptionLimits: limits are accepted on create and update, as the
// OpenAPI document says, read back, checked, and replaced by an update
// like every other member.
func TestSubscriptionLimits(t *testing.T) {
	e := newEnv(t, allowAll)
	withLimits := strings.Replace(vaultSubscription, `"events"`, `"limits":{"rate":2,"burst":4,"maxInFlight":3},"events"`, 1)
	var s outhook.Subscription
	e.do("POST", "/subscriptions", withLimits).status(http.StatusCreated).matches("Subscription").decode(&s)
	require.Equal(t, outhook.DeliveryLimits{Rate: 2, Burst: 4, MaxInFlight: 3}, s.Limits)

	// Sending back what was read keeps them.
	body, err := json.Marshal(s)
	require.NoError(t, err)
	var upd outhook.Subscription
	e.do("PUT", "/subscriptions/"+s.ID, string(body)).status(http.StatusOK).decode(&upd)
	require.Equal(t, s.Limits, upd.Limits)

	// Bad limits name their field.
	bad := strings.Replace(vaultSubscription, `"events"`, `"limits":{"burst":4},"events"`, 1)
	p := e.do("PUT", "/subscriptions/"+s.ID, bad).problem(http.StatusBadRequest)
	require.Len(t, p.Errors, 1)
	require.Equal(t, "limits.burst", p.Errors[0].Field)

	// A replacement without limits has none.
	var replaced outhook.Subscription
	e.do("PUT", "/subscriptions/"+s.ID, vaultSubscription).status(http.StatusOK).decode(&replaced)
	require.Zero(t, replaced.Limits)
}
