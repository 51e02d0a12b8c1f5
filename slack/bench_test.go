package slack_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/slack"
)

// BenchmarkDeliver measures deliveries to a loopback stand-in for Slack:
// rendering, encoding, the HTTP round trip and classifying the answer.
func BenchmarkDeliver(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	hc, err := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		b.Fatal(err)
	}
	defer hc.Close()
	d, err := slack.New(&slack.Options{HTTP: hc, AllowAnyHost: true})
	if err != nil {
		b.Fatal(err)
	}
	req := request(config(b, srv.URL+"/services/"+secretPath),
		`{"title":"Database down","severity":"critical","systemIds":["api","db"],"owner":{"email":"oncall@example.com"},"count":3}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Deliver(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
