package faultserver_test

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/outhook/outhook/outhooktest/faultserver"
)

// A receiver that fails twice, asks for a pause, redirects, then accepts
// everything. In a test, pass the test's testing.TB to New instead of nil:
// the server then closes when the test ends.
func Example() {
	srv := faultserver.New(nil, &faultserver.Options{Plan: faultserver.Plan{
		Script: []faultserver.Fault{
			faultserver.Status(503),
			faultserver.RetryAfter(429, 30*time.Second),
			faultserver.Redirect(302, "/moved"),
		},
		Default: faultserver.OK(),
	}})
	defer srv.Close()

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for range 4 {
		resp, err := client.Post(srv.URL()+"/hook", "application/json", strings.NewReader(`{"n":1}`))
		if err != nil {
			fmt.Println(err)
			continue
		}
		resp.Body.Close()
		line := resp.Status
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			line += ", Retry-After: " + ra
		}
		if loc := resp.Header.Get("Location"); loc != "" {
			line += ", Location: " + strings.TrimPrefix(loc, srv.URL())
		}
		fmt.Println(line)
	}
	fmt.Print(srv.Tally())
	// Output:
	// 503 Service Unavailable
	// 429 Too Many Requests, Retry-After: 30
	// 302 Found, Location: /moved
	// 200 OK
	// requests: 4
	//   fault 200                            1
	//   fault 302 location /moved            1
	//   fault 429 retry-after 30s            1
	//   fault 503                            1
	//   path  /hook                          4 (200: 1, 302 location /moved: 1, 429 retry-after 30s: 1, 503: 1)
}
