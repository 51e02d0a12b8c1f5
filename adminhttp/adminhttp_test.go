package adminhttp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

// TestOpenAPIMatchesRoutes keeps the OpenAPI document and the handler's
// routes equal, both ways: every route is documented with its operationId,
// every documented operation is a route, and the live handler answers each
// documented path and method with a route of its own (not the 404/405 of no
// route).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(openAPIDoc, &doc))
	require.Equal(t, "3.1.0", doc.OpenAPI)

	documented := map[string]string{} // "GET /path" → operationId
	for path, item := range doc.Paths {
		for key, raw := range item {
			if key == "parameters" || key == "summary" || key == "description" {
				continue
			}
			var op struct {
				OperationID string                     `json:"operationId"`
				Responses   map[string]json.RawMessage `json:"responses"`
			}
			require.NoError(t, json.Unmarshal(raw, &op), "%s %s", key, path)
			require.NotEmpty(t, op.OperationID, "%s %s", key, path)
			for _, code := range []string{"401", "403"} {
				require.Contains(t, op.Responses, code, "%s %s documents no %s", key, path, code)
			}
			documented[strings.ToUpper(key)+" "+path] = op.OperationID
		}
	}
	registered := map[string]string{}
	for _, op := range Operations() {
		registered[op.Method+" "+op.Path] = op.ID
	}
	require.Equal(t, registered, documented)

	// The handler itself serves exactly these: each documented route
	// reaches its own handler.
	e := newEnv(t, allowAll)
	for route := range documented {
		method, path, _ := strings.Cut(route, " ")
		path = strings.NewReplacer("{subscriptionId}", "sub_none", "{deliveryId}", "dlv_none", "{eventId}", "no.event").Replace(path)
		r := httptest.NewRequest(method, path, nil)
		_, pattern := e.h.mux.Handler(r)
		require.Equal(t, route, pattern)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		require.NotContains(t, []int{http.StatusMethodNotAllowed}, w.Code, route)
		if w.Code == http.StatusNotFound {
			var p Problem
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
			require.Equal(t, TypeNotFound, p.Type, "%s: %s", route, w.Body.String())
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t, allowAll)
	r := e.do("GET", "/openapi.json", "").status(http.StatusOK)
	require.Equal(t, "application/json", r.Header().Get("Content-Type"))
	require.JSONEq(t, string(OpenAPI()), r.Body.String())
	// Every schema of the document compiles.
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	require.NoError(t, json.Unmarshal(openAPIDoc, &doc))
	c := openAPISchemas()
	for name := range doc.Components.Schemas {
		_, err := c.Compile("openapi.json#/components/schemas/" + name)
		require.NoError(t, err, name)
	}
}

// requestFor builds a request for a route with a plausible body.
func requestFor(op Operation, subID, dlvID string, body io.Reader) *http.Request {
	path := strings.NewReplacer("{subscriptionId}", subID, "{deliveryId}", dlvID, "{eventId}", incidentEvent).Replace(op.Path)
	r := httptest.NewRequest(op.Method, path, body)
	r.Header.Set("Content-Type", "application/json")
	return r
}

// unreadable is a body that fails the test when read: a denied request
// must not be read.
type unreadable struct{ t *testing.T }

func (u unreadable) Read([]byte) (int, error) {
	u.t.Errorf("the body of a denied request was read")
	return 0, io.EOF
}

// state is what a request could change.
func (e *env) state() string {
	ctx := context.Background()
	subs, err := e.client.Subscriptions(ctx)
	require.NoError(e.t, err)
	ds, err := e.client.Deliveries(ctx, outhook.DeliveryQuery{Limit: 1000})
	require.NoError(e.t, err)
	b, err := json.Marshal([]any{subs, ds, len(e.fake.Calls()), e.vault.lastToken()})
	require.NoError(e.t, err)
	return string(b)
}

// TestDeniedChangesNothing sends every route without credentials (401),
// with a role that may not run it (403), and to a handler with the zero
// Options (403): each is refused before its body is read, and nothing
// changes.
func TestDeniedChangesNothing(t *testing.T) {
	e := newEnv(t, byHeader)
	e.headers = []string{"X-Role", "admin"}
	sub := e.createVault()
	e.do("POST", "/subscriptions", `{"events":["maintenance.started"],"delivererId":"fake"}`).status(http.StatusCreated)
	e.emit("inc-1")
	e.waitIdle()
	ds, err := e.client.Deliveries(context.Background(), outhook.DeliveryQuery{})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	before := e.state()

	zero, err := New(e.client, nil)
	require.NoError(t, err)
	ops := append(Operations(), Operation{Method: "GET", Path: "/no/such/route"})
	for _, op := range ops {
		cases := []struct {
			name   string
			h      http.Handler
			role   string
			status int
		}{
			{"no credentials", e.h, "", http.StatusUnauthorized},
			{"zero options", zero, "admin", http.StatusForbidden},
		}
		if !op.ReadOnly && op.ID != "" {
			cases = append(cases, struct {
				name   string
				h      http.Handler
				role   string
				status int
			}{"viewer", e.h, "viewer", http.StatusForbidden})
		}
		for _, c := range cases {
			r := requestFor(op, sub.ID, ds[0].ID, unreadable{t})
			if c.role != "" {
				r.Header.Set("X-Role", c.role)
			}
			w := httptest.NewRecorder()
			c.h.ServeHTTP(w, r)
			resp := response{w, t}
			p := resp.problem(c.status)
			if c.status == http.StatusUnauthorized {
				require.Equal(t, TypeUnauthenticated, p.Type)
				require.Equal(t, `Bearer realm="outhook"`, w.Header().Get("WWW-Authenticate"))
			} else {
				require.Equal(t, TypeForbidden, p.Type)
			}
			require.NotContains(t, w.Body.String(), "not allowed", "the authorizer's error text is private")
		}
	}
	e.waitIdle()
	require.Equal(t, before, e.state())
}

func TestAuthorizerSeesOperation(t *testing.T) {
	var seen []Operation
	e := newEnv(t, func(r *http.Request, op Operation) error {
		seen = append(seen, op)
		return nil
	})
	e.do("GET", "/subscriptions", "").status(http.StatusOK)
	e.do("DELETE", "/subscriptions/sub_x", "").status(http.StatusNotFound)
	e.do("GET", "/nowhere", "").problem(http.StatusNotFound)
	require.Equal(t, []Operation{
		{ID: "listSubscriptions", Method: "GET", Path: "/subscriptions", ReadOnly: true},
		{ID: "deleteSubscription", Method: "DELETE", Path: "/subscriptions/{subscriptionId}"},
		{},
	}, seen)
}

func TestNoRoute(t *testing.T) {
	e := newEnv(t, allowAll)
	p := e.do("GET", "/nowhere", "").problem(http.StatusNotFound)
	require.Equal(t, "about:blank", p.Type)
	require.Equal(t, "Not Found", p.Title)

	r := e.do("PATCH", "/subscriptions/sub_1", `{}`)
	p = r.problem(http.StatusMethodNotAllowed)
	require.Equal(t, "GET, PUT, DELETE", r.Header().Get("Allow"))
	require.Equal(t, "/subscriptions/sub_1", p.Instance)
}

func TestMountedUnderPrefix(t *testing.T) {
	e := newEnv(t, allowAll)
	mux := http.NewServeMux()
	mux.Handle("/admin/outhook/", http.StripPrefix("/admin/outhook", e.h))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/admin/outhook/subscriptions/sub_missing?x=1", nil))
	resp := response{w, t}
	p := resp.problem(http.StatusBadRequest)
	require.Equal(t, "/admin/outhook/subscriptions/sub_missing", p.Instance)
	require.Equal(t, []string{"x"}, fields(p))

	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/admin/outhook/events", nil))
	require.Equal(t, http.StatusOK, w.Code)
}

func TestNewValidates(t *testing.T) {
	_, err := New(nil, nil)
	require.Error(t, err)
	e := newEnv(t, allowAll)
	_, err = New(e.client, &Options{MaxBodyBytes: -1})
	require.ErrorContains(t, err, "MaxBodyBytes")
	_, err = New(e.client, &Options{Deliverers: []outhook.Deliverer{nil}})
	require.ErrorContains(t, err, "Deliverers[0]")
}

func TestOperationsAreUniqueAndSorted(t *testing.T) {
	ids := map[string]bool{}
	for _, op := range Operations() {
		require.False(t, ids[op.ID], op.ID)
		ids[op.ID] = true
		require.Equal(t, op.Method == "GET", op.ReadOnly, "%s: only GETs are read-only", op.ID)
	}
	// Sanity: the route table lists the subscription routes.
	var paths []string
	for _, op := range Operations() {
		paths = append(paths, op.Path)
	}
	sort.Strings(paths)
	require.True(t, slices.Contains(paths, "/subscriptions/{subscriptionId}/test"))
}

func TestInternalErrorsAreHidden(t *testing.T) {
	e := newEnv(t, allowAll)
	p := e.h.problemOf(context.Background(), errors.New("db password=hunter2 refused"), nil)
	require.Equal(t, http.StatusInternalServerError, p.Status)
	require.NotContains(t, p.Detail, "hunter2")
}
