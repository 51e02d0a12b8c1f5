package adminhttp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/adminhttp"
	"github.com/outhook/outhook/outhooktest"
)

type Ping struct {
	N int `json:"n"`
}

// Mount the admin API under /admin/outhook/ of the application's own mux,
// behind the application's own authentication.
func Example() {
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Ping]{
		Hook: outhook.MustNewHook[Ping]("ping"), DisplayName: "Ping", Category: outhook.CategoryHealth,
	}, outhook.PluginMetadata{PluginID: "demo"})
	fake := outhooktest.NewDeliverer("fake")
	client, err := outhook.NewClient(&outhook.Config{
		Registry: reg, Deliverers: []outhook.Deliverer{fake}, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	_ = client.Start(context.Background())
	defer client.Stop(context.Background())

	admin, err := adminhttp.New(client, &adminhttp.Options{
		// The application's own check: here a fixed token, with viewers
		// limited to reading.
		Authorize: func(r *http.Request, op adminhttp.Operation) error {
			switch r.Header.Get("Authorization") {
			case "Bearer admin-token":
				return nil
			case "Bearer viewer-token":
				if op.ReadOnly {
					return nil
				}
				return errors.New("viewers may only read")
			}
			return adminhttp.ErrUnauthenticated
		},
		Deliverers: []outhook.Deliverer{fake},
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/outhook/", http.StripPrefix("/admin/outhook", admin))

	send := func(token, method, path, body string) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(method, path, w.Code, w.Header().Get("Content-Type"))
	}
	send("", "GET", "/admin/outhook/events", "")
	send("viewer-token", "POST", "/admin/outhook/subscriptions", `{"events":["demo.ping"],"delivererId":"fake"}`)
	send("admin-token", "POST", "/admin/outhook/subscriptions", `{"events":["demo.ping"],"delivererId":"fake"}`)
	send("admin-token", "POST", "/admin/outhook/subscriptions", `{"events":["demo.pong"],"delivererId":"fake"}`)
	send("viewer-token", "GET", "/admin/outhook/subscriptions", "")
	// Output:
	// GET /admin/outhook/events 401 application/problem+json
	// POST /admin/outhook/subscriptions 403 application/problem+json
	// POST /admin/outhook/subscriptions 201 application/json
	// POST /admin/outhook/subscriptions 400 application/problem+json
	// GET /admin/outhook/subscriptions 200 application/json
}

// A 400 names the fields at fault.
func ExampleProblem() {
	client, _ := outhook.NewClient(&outhook.Config{Logger: slog.New(slog.DiscardHandler)})
	admin, _ := adminhttp.New(client, &adminhttp.Options{
		Authorize: func(*http.Request, adminhttp.Operation) error { return nil }, // open, for the example only
	})
	r := httptest.NewRequest("POST", "/subscriptions", strings.NewReader(`{"events":["no.such.event"],"delivererId":"fake"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	admin.ServeHTTP(w, r)
	fmt.Print(w.Body.String())
	// Output:
	// {"type":"urn:outhook:problem:validation","title":"Invalid request","status":400,"detail":"The subscription is invalid: events[0]: unknown event \"no.such.event\".","instance":"/subscriptions","errors":[{"field":"events[0]","detail":"unknown event \"no.such.event\""}]}
}

func ExamplePropertyPaths() {
	schema, _ := outhook.SchemaFor[struct {
		Severity  string   `json:"severity"`
		SystemIDs []string `json:"systemIds"`
		Owner     struct {
			Name string `json:"name"`
		} `json:"owner"`
	}]()
	paths, _, _ := adminhttp.PropertyPaths(schema)
	fmt.Println(paths)
	// Output:
	// [owner owner.name severity systemIds systemIds[]]
}
