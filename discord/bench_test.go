package discord_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/outhook/outhook/discord"
	"github.com/outhook/outhook/safehttp"
)

// BenchmarkDeliver measures deliveries to a loopback stand-in for Discord:
// rendering, encoding, the HTTP round trip and reading the message ID.
func BenchmarkDeliver(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, created)
	}))
	defer srv.Close()
	hc, err := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		b.Fatal(err)
	}
	defer hc.Close()
	d, err := discord.New(&discord.Options{HTTP: hc, AllowAnyHost: true})
	if err != nil {
		b.Fatal(err)
	}
	req := request(config(b, map[string]any{"webhookUrl": srv.URL + hookPath}),
		`{"title":"Database down","summary":"Primary DB unreachable","severity":"critical","systemIds":["api","db"],"count":3}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Deliver(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
