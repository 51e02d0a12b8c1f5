package adminhttp

// Bad input and faults of the admin API (issue 6): filters that do not
// compile or type-check, operations on what does not exist, requests the
// authorizer denies, and payload schemas whose property list could grow
// without end.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

// fullState is everything a request could change, attempts included: the
// subscriptions, every delivery with its attempts, and every call the
// deliverers received.
func (e *env) fullState() string {
	e.t.Helper()
	ctx := context.Background()
	subs, err := e.client.Subscriptions(ctx)
	require.NoError(e.t, err)
	ds, err := e.client.Deliveries(ctx, outhook.DeliveryQuery{Limit: 1000})
	require.NoError(e.t, err)
	var full []outhook.Delivery
	for _, d := range ds {
		got, err := e.client.Delivery(ctx, d.ID)
		require.NoError(e.t, err)
		full = append(full, got)
	}
	e.vault.mu.Lock()
	tokens := len(e.vault.tokens)
	e.vault.mu.Unlock()
	b, err := json.Marshal([]any{subs, full, len(e.fake.Calls()), tokens})
	require.NoError(e.t, err)
	return string(b)
}

// TestFilterExprBadInput: a CEL filter that does not compile, or does not
// type-check against the payload schema of the events selected, is a 400
// validation problem on create and on update, whose field is filter.expr
// and which names the line, the column and the problem; and nothing is
// stored.
func TestFilterExprBadInput(t *testing.T) {
	e := newEnv(t, allowAll)
	var existing outhook.Subscription
	e.do("POST", "/subscriptions", `{"name":"keep","events":["incident.incident.created"],"delivererId":"fake",
		"filter":{"expr":"payload.severity == \"critical\""}}`).status(http.StatusCreated).decode(&existing)
	before := e.fullState()

	cases := []struct {
		name         string
		events       string // JSON array
		expr         string
		line, column int
		problem      string
	}{
		{"syntax: dangling operator", `["incident.incident.created"]`, `payload.severity == `, 1, 21, "Syntax error"},
		{"syntax: unclosed call", `["incident.incident.created"]`, `size(payload.systemIds > 0`, 1, 27, "Syntax error"},
		{"syntax on line 3", `["incident.incident.created"]`, "payload.severity == \"critical\" ||\n\n  payload.systemIds.exists(s, s ==)", 3, 35, "Syntax error"},
		{"unknown field", `["incident.incident.created"]`, `payload.sevrity == "critical"`, 1, 8, "undefined field 'sevrity'"},
		{"unknown nested field", `["incident.incident.created"]`, `has(payload.owner) && payload.owner.nmae == "x"`, 1, 36, "undefined field 'nmae'"},
		{"type mismatch on line 2", `["incident.incident.created"]`, "payload.severity == \"critical\" &&\n  payload.systemIds == 1", 2, 21, "no matching overload for '_==_'"},
		{"not a bool", `["incident.incident.created"]`, `payload.labels`, 1, 1, "must be a bool"},
		{"field of another event", `["maintenance.started"]`, `payload.severity == "critical"`, 1, 8, "undefined field 'severity'"},
		{"one of a pattern's events", `["incident.incident.created","maintenance.*"]`, `payload.windowId != ""`, 1, 8, "undefined field 'windowId'"},
	}
	for _, c := range cases {
		body := fmt.Sprintf(`{"name":"bad","events":%s,"delivererId":"fake","filter":{"expr":%q}}`, c.events, c.expr)
		for _, req := range []struct{ method, path string }{
			{"POST", "/subscriptions"},
			{"PUT", "/subscriptions/" + existing.ID},
		} {
			t.Run(c.name+"/"+req.method, func(t *testing.T) {
				e.t = t
				defer func() { e.t = nil }()
				p := e.do(req.method, req.path, body).problem(http.StatusBadRequest)
				require.Equal(t, TypeValidation, p.Type)
				require.Equal(t, []string{"filter.expr"}, fields(p), "%+v", p)
				fp := p.Errors[0]
				require.Equal(t, [2]int{c.line, c.column}, [2]int{fp.Line, fp.Column}, "position of %q", fp.Detail)
				require.Contains(t, fp.Detail, c.problem)
				require.Contains(t, fp.Detail, fmt.Sprintf("at %d:%d", c.line, c.column), "the detail names the position too")
				require.Contains(t, p.Detail, "filter.expr")
				require.Contains(t, p.Detail, c.problem)
				require.Equal(t, before, e.fullState(), "nothing is stored")
			})
		}
	}
	e.t = t

	// The subscription kept its filter, and a good one is still accepted.
	var got outhook.Subscription
	e.do("GET", "/subscriptions/"+existing.ID, "").status(http.StatusOK).decode(&got)
	require.Equal(t, `payload.severity == "critical"`, got.Filter.Expr)
	e.do("PUT", "/subscriptions/"+existing.ID, `{"events":["incident.incident.created"],"delivererId":"fake",
		"filter":{"expr":"\"sys-1\" in payload.systemIds"}}`).status(http.StatusOK).decode(&got)
	require.Equal(t, `"sys-1" in payload.systemIds`, got.Filter.Expr)
}

// TestUnknownTargetsAreNotFound: replaying an unknown message (or an event
// a message does not carry), and recovering, testing, enabling or
// redelivering what does not exist, is a 404 not-found problem that names
// what is missing; none changes anything.
func TestUnknownTargetsAreNotFound(t *testing.T) {
	e := newEnv(t, allowAll)
	sub := e.createVault()
	e.vault.setFail(true)
	e.emit("inc-1")
	e.waitIdle()
	ds, err := e.client.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	msg := ds[0].MessageID
	before := e.fullState()

	for _, c := range []struct {
		method, path, body string
		names              string // what the detail names
	}{
		{"POST", "/messages/msg_unknown/replay", "", "msg_unknown"},
		{"POST", "/messages/msg_unknown/replay", `{"eventId":"incident.incident.created"}`, "msg_unknown"},
		{"POST", "/messages/" + msg + "/replay", `{"eventId":"maintenance.started"}`, "maintenance.started"},
		{"POST", "/subscriptions/sub_unknown/recover", "", "sub_unknown"},
		{"POST", "/subscriptions/sub_unknown/recover", `{"since":"0001-01-01T00:00:00Z","limit":10000}`, "sub_unknown"},
		{"POST", "/subscriptions/sub_unknown/test", "", "sub_unknown"},
		{"POST", "/subscriptions/sub_unknown/enable", "", "sub_unknown"},
		{"POST", "/subscriptions/sub_unknown/disable", "", "sub_unknown"},
		{"PUT", "/subscriptions/sub_unknown", `{"events":["incident.**"],"delivererId":"fake"}`, "sub_unknown"},
		{"DELETE", "/subscriptions/sub_unknown", "", "sub_unknown"},
		{"POST", "/deliveries/dlv_unknown/redeliver", "", "dlv_unknown"},
		{"GET", "/deliveries/dlv_unknown", "", "dlv_unknown"},
	} {
		p := e.do(c.method, c.path, c.body).problem(http.StatusNotFound)
		require.Equal(t, TypeNotFound, p.Type, "%s %s", c.method, c.path)
		require.Contains(t, p.Detail, c.names, "%s %s", c.method, c.path)
	}
	e.waitIdle()
	require.Equal(t, before, e.fullState())

	// A message whose subscription is gone is still known: replay sends it
	// to the subscriptions that select it now, none (Client.Replay: "empty
	// when none does").
	e.do("DELETE", "/subscriptions/"+sub.ID, "").status(http.StatusNoContent)
	var res replayResult
	e.do("POST", "/messages/"+msg+"/replay", "").status(http.StatusAccepted).matches("ReplayResult").decode(&res)
	require.Equal(t, incidentEvent, res.EventID)
	require.Empty(t, res.Deliveries)
	e.waitIdle()
	got, err := e.client.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, got, 1, "no delivery was made")
}

// readSpy is a request body that records whether it was read.
type readSpy struct {
	r    io.Reader
	read *atomic.Bool
}

func (s readSpy) Read(p []byte) (int, error) {
	s.read.Store(true)
	return s.r.Read(p)
}

// TestAuthorizationDeniedChangesNothing sends every route of the API, each
// with a body that would change something if it ran, to handlers that deny
// it in every way: no authorizer (403), an authorizer that does not know
// the caller (401, with the challenge), one that wraps ErrUnauthenticated
// (401), and one that refuses the operation (403). Each is a problem
// detail, the authorizer saw the route's operation, the body was not read,
// and the store is unchanged. The same request, allowed, then does change
// the state: the bodies are not no-ops.
func TestAuthorizationDeniedChangesNothing(t *testing.T) {
	// What each route is sent: a body that makes it do something.
	bodies := map[string]string{
		"createSubscription":  `{"events":["maintenance.started"],"delivererId":"fake"}`,
		"updateSubscription":  strings.Replace(vaultSubscription, `"name":"ops"`, `"name":"renamed"`, 1),
		"recoverSubscription": `{"since":"2000-01-01T00:00:00Z","limit":10}`,
		"replayMessage":       `{"eventId":"` + incidentEvent + `"}`,
	}
	// The status of each mutating route when allowed.
	allowed := map[string]int{
		"createSubscription": 201, "updateSubscription": 200, "deleteSubscription": 204,
		"enableSubscription": 200, "disableSubscription": 200, "testSubscription": 200,
		"recoverSubscription": 200, "redeliver": 202, "replayMessage": 202,
	}
	ops := Operations()
	for _, op := range ops {
		if !op.ReadOnly {
			require.Contains(t, allowed, op.ID, "a new mutating route: add it to this test")
		}
	}
	ops = append(ops, Operation{Method: "POST", Path: "/no/such/route"})

	denials := []struct {
		name      string
		opts      func(seen *[]Operation) *Options // nil: New(client, nil)
		status    int
		challenge string
	}{
		{"nil options", nil, http.StatusForbidden, ""},
		{"no authorizer", func(*[]Operation) *Options { return &Options{MaxBodyBytes: 4096} }, http.StatusForbidden, ""},
		{"unauthenticated", func(seen *[]Operation) *Options {
			return &Options{Authorize: func(_ *http.Request, op Operation) error {
				*seen = append(*seen, op)
				return ErrUnauthenticated
			}}
		}, http.StatusUnauthorized, `Bearer realm="outhook"`},
		{"wrapped unauthenticated, own challenge", func(seen *[]Operation) *Options {
			return &Options{Challenge: `Basic realm="ops"`, Authorize: func(_ *http.Request, op Operation) error {
				*seen = append(*seen, op)
				return fmt.Errorf("token expired at noon: %w", ErrUnauthenticated)
			}}
		}, http.StatusUnauthorized, `Basic realm="ops"`},
		{"forbidden", func(seen *[]Operation) *Options {
			return &Options{Authorize: func(_ *http.Request, op Operation) error {
				*seen = append(*seen, op)
				return errors.New("role viewer may not do this")
			}}
		}, http.StatusForbidden, ""},
	}

	for _, op := range ops {
		name := op.ID
		if name == "" {
			name = "no route"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, allowAll)
			sub := e.createVault()
			e.vault.setFail(true) // a failed delivery, to redeliver and recover
			e.emit("inc-1")
			e.waitIdle()
			if op.ID == "enableSubscription" {
				_, err := e.client.SetSubscriptionEnabled(context.Background(), sub.ID, false)
				require.NoError(t, err)
			}
			ds, err := e.client.Deliveries(context.Background(), outhook.DeliveryQuery{})
			require.NoError(t, err)
			require.Len(t, ds, 1)
			require.Equal(t, outhook.DeliveryFailed, ds[0].Status)
			path := strings.NewReplacer("{subscriptionId}", sub.ID, "{deliveryId}", ds[0].ID,
				"{messageId}", ds[0].MessageID, "{eventId}", incidentEvent).Replace(op.Path)
			body := bodies[op.ID]
			before := e.fullState()

			for _, d := range denials {
				var seen []Operation
				var opts *Options
				if d.opts != nil {
					opts = d.opts(&seen)
				}
				h, err := New(e.client, opts)
				require.NoError(t, err)
				var read atomic.Bool
				r := httptest.NewRequest(op.Method, path, readSpy{strings.NewReader(body), &read})
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)

				p := response{w, t}.problem(d.status)
				if d.status == http.StatusUnauthorized {
					require.Equal(t, TypeUnauthenticated, p.Type, d.name)
					require.Equal(t, d.challenge, w.Header().Get("WWW-Authenticate"), d.name)
				} else {
					require.Equal(t, TypeForbidden, p.Type, d.name)
					require.Empty(t, w.Header().Get("WWW-Authenticate"), d.name)
				}
				require.Equal(t, path, p.Instance, d.name)
				for _, private := range []string{"noon", "viewer", "expired"} {
					require.NotContains(t, w.Body.String(), private, "%s: the authorizer's error is private", d.name)
				}
				require.False(t, read.Load(), "%s: the body of a denied request was read", d.name)
				if d.opts != nil && opts.Authorize != nil {
					want := op
					if op.ID == "" {
						want = Operation{}
					}
					require.Equal(t, []Operation{want}, seen, "%s: the authorizer sees the route's operation", d.name)
				}
				e.waitIdle()
				require.Equal(t, before, e.fullState(), "%s: the denied request changed the state", d.name)
			}

			if op.ReadOnly || op.ID == "" {
				return
			}
			// Allowed, the same request changes the state.
			r := e.do(op.Method, path, body)
			require.Equal(t, allowed[op.ID], r.Code, "body: %s", r.Body.String())
			e.waitIdle()
			require.NotEqual(t, before, e.fullState(), "the request, allowed, changes nothing: the test proves nothing")
		})
	}
}

// pathDepth counts the levels of a property path: "a.b[]" has three.
func pathDepth(p string) int {
	return strings.Count(p, ".") + strings.Count(p, "[]") + 1
}

// requireBoundedPaths checks what every PropertyPaths result must be:
// sorted, unique, non-empty paths, at most MaxPropertyPaths of them, none
// nested more than MaxPropertyDepth levels.
func requireBoundedPaths(t testing.TB, paths []string) {
	t.Helper()
	require.LessOrEqual(t, len(paths), MaxPropertyPaths)
	require.True(t, slices.IsSorted(paths), "not sorted")
	require.Len(t, slices.Compact(slices.Clone(paths)), len(paths), "not unique")
	for _, p := range paths {
		require.NotEmpty(t, p)
		require.LessOrEqual(t, pathDepth(p), MaxPropertyDepth+1, "path %q is too deep", p)
	}
}

// Recursive Go types as GenerateSchema writes them, with the kinds of
// recursion an application's payloads have.

// Node refers to itself by pointer, slice, map and array of pointers.
type Node struct {
	Name     string           `json:"name"`
	Next     *Node            `json:"next,omitempty"`
	Children []Node           `json:"children"`
	ByName   map[string]*Node `json:"byName,omitempty"`
	Pair     [2]*Node         `json:"pair"`
}

// Ping and Pong refer to each other.
type Ping struct {
	Pong *Pong `json:"pong,omitempty"`
	N    int   `json:"n"`
}

type Pong struct {
	Ping  *Ping   `json:"ping,omitempty"`
	Pings []*Ping `json:"pings"`
}

// TestPropertyPathsOfRecursiveSchemas: schemas with recursion ($ref
// cycles, through pointers, slices, maps and mutual references), oneOf,
// anyOf and allOf around references, and deep nesting all give a finite,
// bounded list of paths.
func TestPropertyPathsOfRecursiveSchemas(t *testing.T) {
	schema := func(raw json.RawMessage, err error) string {
		require.NoError(t, err)
		return string(raw)
	}
	var chain []string // 300 distinct definitions, each a property of the one before
	for i := range 300 {
		chain = append(chain, fmt.Sprintf(`"D%d":{"properties":{"x":{"$ref":"#/$defs/D%d"}}}`, i, i+1))
	}
	cases := []struct {
		name      string
		schema    string
		want      []string // nil: check the bounds only
		truncated bool
	}{
		{"pointer, slice, map and array of itself", schema(outhook.SchemaFor[Node]()),
			[]string{"byName", "byName.*", "children", "children[]", "name", "next", "pair", "pair[]"}, false},
		{"mutual recursion", schema(outhook.SchemaFor[Ping]()),
			[]string{"n", "pong", "pong.ping", "pong.pings", "pong.pings[]"}, false},
		{"cycle through oneOf, anyOf and allOf", `{"$defs":{
			"A":{"oneOf":[{"$ref":"#/$defs/B"},{"type":"null"}],"properties":{"a":{"$ref":"#/$defs/A"}}},
			"B":{"anyOf":[{"$ref":"#/$defs/C"}],"properties":{"b":{"items":{"$ref":"#/$defs/A"}}}},
			"C":{"allOf":[{"$ref":"#/$defs/A"},{"properties":{"c":{"$ref":"#/$defs/B"}}}]}},
			"$ref":"#/$defs/A"}`, []string{"a", "b", "b[]", "c"}, false},
		{"the root through an alternative", `{"oneOf":[{"$ref":"#"},{"properties":{"r":{"anyOf":[{"$ref":"#"}]}}}]}`,
			[]string{"r"}, false},
		{"aliases of one reference", `{"$defs":{"A":{"properties":{
			"p":{"$ref":"#/%24defs/A"},"q":{"$ref":"#/$defs/%41"},"r":{"$ref":"#/$defs/A"}}}},"$ref":"#/$defs/A"}`,
			nil, false},
		{"a chain of 300 definitions", `{"$defs":{` + strings.Join(chain, ",") + `},"$ref":"#/$defs/D0"}`, nil, true},
		{"200 nested arrays", strings.Repeat(`{"items":`, 200) + `{}` + strings.Repeat(`}`, 200), nil, true},
		{"2,000 nested allOf", strings.Repeat(`{"allOf":[`, 2000) + `{"properties":{"deep":{}}}` + strings.Repeat(`]}`, 2000),
			[]string{"deep"}, false},
		{"2,000 nested oneOf of properties", strings.Repeat(`{"oneOf":[{"properties":{"x":`, 2000) + `{}` + strings.Repeat(`}}]}`, 2000),
			nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			paths, truncated, err := PropertyPaths(json.RawMessage(c.schema))
			require.NoError(t, err)
			requireBoundedPaths(t, paths)
			require.Equal(t, c.truncated, truncated)
			if c.want != nil {
				require.Equal(t, c.want, paths)
			}
			// The same schema gives the same list.
			again, _, err := PropertyPaths(json.RawMessage(c.schema))
			require.NoError(t, err)
			require.Equal(t, paths, again)
		})
	}
}
