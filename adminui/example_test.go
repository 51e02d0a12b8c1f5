package adminui_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/adminhttp"
	"github.com/outhook/outhook/adminui"
	"github.com/outhook/outhook/webhook"
)

// An application without a sign-in of its own guards the console and the
// admin API with one token: the console asks for it once, and programs
// send it as a bearer token.
func Example() {
	wh, err := webhook.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	deliverers := []outhook.Deliverer{wh}
	client, err := outhook.NewClient(&outhook.Config{Registry: outhook.NewEventRegistry(), Deliverers: deliverers})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = client.Stop(ctx)
	}()

	auth, err := adminui.NewTokenAuth(adminui.NewToken()) // or a token from the application's secrets
	if err != nil {
		log.Fatal(err)
	}
	api, err := adminhttp.New(client, &adminhttp.Options{Authorize: auth.Authorize, Deliverers: deliverers})
	if err != nil {
		log.Fatal(err)
	}
	console, err := adminui.New(api, &adminui.Options{Title: "Acme", Login: auth})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/outhook/api/", http.StripPrefix("/admin/outhook/api", api))
	mux.Handle("/admin/outhook/console/", http.StripPrefix("/admin/outhook/console", console))

	srv := httptest.NewServer(mux)
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.Get(srv.URL + "/admin/outhook/console/subscriptions")
	if err != nil {
		log.Fatal(err)
	}
	res.Body.Close()
	fmt.Println(res.StatusCode, res.Header.Get("Location"))
	// Output:
	// 303 /admin/outhook/console/login?next=%2Fsubscriptions
}
