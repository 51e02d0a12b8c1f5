package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/outhook/outhook/webhook"
)

// benchBody is a ~1 KB envelope, a typical event.
var benchBody = []byte(`{"type":"incident.incident.created","timestamp":"2026-01-02T03:00:00.123Z","data":{"title":"` +
	strings.Repeat("x", 920) + `","severity":"critical","systemIds":["db-1","db-2"]}}`)

// BenchmarkSignV1 is the v1 signing of one delivery: parsing the secret and
// one HMAC-SHA256 over ~1 KB.
func BenchmarkSignV1(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		if _, err := webhook.Sign(deliveryID, clock, benchBody, secretA); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignV1a is the v1a signing of one delivery: parsing the key
// (which derives the public key from the seed) and one ed25519 signature.
func BenchmarkSignV1a(b *testing.B) {
	_, fullKey, _ := rfc8032Key(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for b.Loop() {
		if _, err := webhook.Sign(deliveryID, clock, benchBody, fullKey); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyV1 is a receiver's check of one v1 signature with a
// Verifier made once.
func BenchmarkVerifyV1(b *testing.B) {
	v, err := webhook.NewVerifier(secretA)
	if err != nil {
		b.Fatal(err)
	}
	v.Now = fixed(clock)
	h := signed(b, deliveryID, clock, benchBody, secretA)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(benchBody, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyV1a is a receiver's check of one v1a signature.
func BenchmarkVerifyV1a(b *testing.B) {
	_, fullKey, publicKey := rfc8032Key(b)
	v, err := webhook.NewVerifier(publicKey)
	if err != nil {
		b.Fatal(err)
	}
	v.Now = fixed(clock)
	h := signed(b, deliveryID, clock, benchBody, fullKey)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(benchBody, h); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeliver is one delivery attempt (config decoding and checks,
// envelope, v1 signature, HTTP request over a kept-alive loopback
// connection, response) to a receiver that answers 204 at once.
func BenchmarkDeliver(b *testing.B) {
	rcv := newReceiver(b, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	d := newDeliverer(b, nil)
	req := request(config(b, map[string]any{"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}}}))
	req.Payload = json.RawMessage(`{"title":"` + strings.Repeat("x", 920) + `","severity":"critical","systemIds":["db-1","db-2"]}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Deliver(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkDeliverParallel is BenchmarkDeliver from GOMAXPROCS goroutines
// sharing one deliverer.
func BenchmarkDeliverParallel(b *testing.B) {
	rcv := newReceiver(b, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	d := newDeliverer(b, nil)
	cfg := config(b, map[string]any{"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}}})
	payload := json.RawMessage(`{"title":"` + strings.Repeat("x", 920) + `","severity":"critical","systemIds":["db-1","db-2"]}`)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := request(cfg)
		req.Payload = payload
		for pb.Next() {
			if _, err := d.Deliver(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b)
}

// reportRate reports deliveries per second (1e9 / ns per op).
func reportRate(b *testing.B) {
	if b.N > 0 && b.Elapsed() > 0 {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	}
}

// BenchmarkDeliverSize is BenchmarkDeliver at payload sizes from a typical
// event to the large-payload rows of the benchmark program, in both body
// modes: what signing and building the body cost as the payload grows.
func BenchmarkDeliverSize(b *testing.B) {
	// A receiver that keeps nothing, unlike newReceiver's.
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(rcv.Close)
	d := newDeliverer(b, nil)
	ctx := context.Background()
	for _, size := range []int{300, 10 << 10, 100 << 10} {
		payload := json.RawMessage(`{"seq":"000000000001","pad":"` + strings.Repeat("abcdefghij", (size-30)/10) + `"}`)
		for _, mode := range []string{"envelope", "raw"} {
			b.Run(fmt.Sprintf("%dB/%s", size, mode), func(b *testing.B) {
				req := request(config(b, map[string]any{"url": rcv.URL, "body": mode, "secrets": []map[string]any{{"secret": secretA}}}))
				req.Payload = payload
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := d.Deliver(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
