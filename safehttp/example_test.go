package safehttp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"time"

	"github.com/outhook/outhook/safehttp"
)

func ExampleNew() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "received by "+r.UserAgent())
	}))
	defer srv.Close()

	// Tests and demos open loopback explicitly; nothing else is allowed.
	c, err := safehttp.New(&safehttp.Config{
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hook", strings.NewReader(`{"type":"ping"}`))
	resp, err := c.Do(context.Background(), req)
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Status, string(resp.Body))

	// A client with the defaults refuses the same request.
	strict, _ := safehttp.New(nil)
	defer strict.Close()
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/hook", strings.NewReader(`{"type":"ping"}`))
	_, err = strict.Do(context.Background(), req)
	var e *safehttp.Error
	if errors.As(err, &e) {
		fmt.Println(e.Class, e.Permanent(), errors.Is(err, safehttp.ErrBlocked))
	}
	// Output:
	// 200 OK received by outhook/0.1.0
	// blocked true true
}

func ExampleRedact() {
	for _, u := range []string{
		"https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
		"https://discord.com/api/webhooks/123456/TOKEN?wait=true",
		"https://prod-12.westus.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SECRET",
		"https://me:api-token@acme.atlassian.net/rest/api/3/issue",
		"https://hooks.example.com/in?token=SECRET",
	} {
		fmt.Println(safehttp.Redact(u))
	}
	// Output:
	// https://hooks.slack.com/services/[redacted]
	// https://discord.com/api/webhooks/123456/[redacted]?wait=[redacted]
	// https://prod-12.westus.logic.azure.com/workflows/abc/[redacted]?api-version=[redacted]&sig=[redacted]
	// https://[redacted]@acme.atlassian.net/rest/api/3/issue
	// https://hooks.example.com/in?token=[redacted]
}

func ExampleRetryAfter() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fmt.Println(safehttp.RetryAfter("120", now))
	fmt.Println(safehttp.RetryAfter("Sun, 01 Mar 2026 12:05:00 GMT", now))
	fmt.Println(safehttp.RetryAfter("soon", now))
	// Output:
	// 2m0s true
	// 5m0s true
	// 0s false
}

func ExampleStatusError() {
	req, _ := http.NewRequest(http.MethodPost, "https://hooks.slack.com/services/T000/B000/XXXX", nil)
	resp := &safehttp.Response{StatusCode: 503, Status: "503 Service Unavailable"}
	err := safehttp.StatusError(req, resp)
	fmt.Println(err)
	fmt.Println(err.ErrorClass(), err.StatusCode, err.Permanent())
	// Output:
	// safehttp: POST https://hooks.slack.com/services/[redacted]: 503 Service Unavailable
	// http_status 503 false
}
