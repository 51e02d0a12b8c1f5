package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/webhook"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// Fixed test material. The secrets are made of repeated bytes so that the
// expected values below can be recomputed by anyone.
var (
	// secretA is "whsec_" + base64 of 32 bytes 'A'.
	secretA = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
	// secretB is "whsec_" + base64 of 24 bytes 'B'.
	secretB = "whsec_QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC"
	// secretC is "whsec_" + base64 of 64 bytes 'C'.
	secretC = "whsec_Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQw=="

	// rfc8032Seed and rfc8032Public are TEST 1 of RFC 8032 §7.1.
	rfc8032Seed   = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	rfc8032Public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"

	// clock is the fixed time of most tests.
	clock = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// occurred is when the test event happened.
	occurred = time.Date(2026, 1, 2, 3, 0, 0, 123000000, time.UTC)
)

const (
	deliveryID = "dlv_01JGZ5S8Q3V5W2X8Y9Z0A1B2C3"
	eventID    = "incident.incident.created"
	payload    = `{"title":"DB <down> & out","severity":"critical","systemIds":["db-1"]}`
)

// received is one request a receiver got.
type received struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// receiver is a loopback HTTP server that records requests and answers
// with respond (200 "ok" when nil).
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newReceiver(t testing.TB, respond http.HandlerFunc) *receiver {
	t.Helper()
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			t.Errorf("receiver: read body: %v", err)
		}
		r.mu.Lock()
		r.reqs = append(r.reqs, received{Method: req.Method, Path: req.URL.Path, RawQuery: req.URL.RawQuery, Header: req.Header.Clone(), Body: body})
		r.mu.Unlock()
		if respond == nil {
			_, _ = io.WriteString(w, "ok")
			return
		}
		respond(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// only returns the single request received, failing otherwise.
func (r *receiver) only(t testing.TB) received {
	t.Helper()
	reqs := r.requests()
	require.Len(t, reqs, 1)
	return reqs[0]
}

// status answers with code, extra headers (name, value pairs) and body.
func status(code int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// loopbackClient is a safehttp client that may reach 127.0.0.0/8.
func loopbackClient(t testing.TB) *safehttp.Client {
	t.Helper()
	c, err := safehttp.New(&safehttp.Config{Allow: loopback})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// newDeliverer returns a deliverer that reaches loopback, with its clock
// at now() (time.Now when nil).
func newDeliverer(t testing.TB, now func() time.Time) *webhook.Deliverer {
	t.Helper()
	d, err := webhook.New(&webhook.Options{HTTP: loopbackClient(t), Now: now})
	require.NoError(t, err)
	return d
}

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

// config renders a config as JSON.
func config(t testing.TB, cfg map[string]any) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	return raw
}

// request is a delivery request for the test event with the given config.
func request(cfg json.RawMessage) *outhook.DeliveryRequest {
	return &outhook.DeliveryRequest{
		DeliveryID:   deliveryID,
		MessageID:    "msg_01JGZ5S8Q3V5W2X8Y9Z0A1B2C4",
		EventID:      eventID,
		Event:        outhook.Event{ID: eventID, DisplayName: "Incident Created"},
		Subscription: outhook.Subscription{ID: "sub_1", DelivererID: webhook.ID, Config: cfg},
		Payload:      json.RawMessage(payload),
		OccurredAt:   occurred,
		Attempt:      1,
	}
}

func deliver(t testing.TB, d *webhook.Deliverer, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	t.Helper()
	return d.Deliver(context.Background(), req)
}
