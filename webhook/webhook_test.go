package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/webhook"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/config.schema.json")

// v1 computes a v1 signature with the standard library alone, as a receiver
// following the spec would.
func v1(t testing.TB, secret, id string, ts int64, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.%s", id, ts, body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func TestWireFormat(t *testing.T) {
	rcv := newReceiver(t, status(http.StatusOK, `{"received":true}`))
	d := newDeliverer(t, fixed(clock))
	cfg := config(t, map[string]any{
		"url":     rcv.URL + "/hooks/in?tenant=42",
		"secrets": []map[string]any{{"secret": secretA}},
	})

	res, err := deliver(t, d, request(cfg))
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, `{"received":true}`, res.Response)
	require.Empty(t, res.ExternalID)
	require.Equal(t, []string{deliveryID}, res.RequestHeaders["Webhook-Id"], "the request headers are reported")
	require.Equal(t, []string{"text/plain; charset=utf-8"}, res.ResponseHeaders["Content-Type"], "the response headers are reported")

	got := rcv.only(t)
	require.Equal(t, "POST", got.Method)
	require.Equal(t, "/hooks/in", got.Path)
	require.Equal(t, "tenant=42", got.RawQuery)

	wantBody := `{"type":"incident.incident.created","timestamp":"2026-01-02T03:00:00.123Z","data":` + payload + `}`
	require.Equal(t, wantBody, string(got.Body), "the payload is embedded byte for byte, not re-encoded")
	var env struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(got.Body, &env))
	require.Equal(t, eventID, env.Type)
	require.True(t, occurred.Equal(env.Timestamp))
	require.JSONEq(t, payload, string(env.Data))

	h := got.Header
	require.Equal(t, "application/json", h.Get("Content-Type"))
	require.Equal(t, "outhook/"+safehttp.Version, h.Get("User-Agent"))
	require.Equal(t, deliveryID, h.Get("webhook-id"))
	require.Equal(t, strconv.FormatInt(clock.Unix(), 10), h.Get("webhook-timestamp"))
	require.Equal(t, "1767323045", h.Get("webhook-timestamp"))
	require.Equal(t, v1(t, secretA, deliveryID, clock.Unix(), got.Body), h.Get("webhook-signature"))
	require.Equal(t, strconv.Itoa(len(wantBody)), h.Get("Content-Length"))

	var names []string
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	require.Equal(t, []string{"Accept-Encoding", "Content-Length", "Content-Type", "User-Agent",
		"Webhook-Id", "Webhook-Signature", "Webhook-Timestamp"}, names, "no other header is sent")
}

// TestRetriesKeepIDAndReSign: the ID is the delivery's, the same on every
// attempt; the timestamp and signature are the attempt's.
func TestRetriesKeepIDAndReSign(t *testing.T) {
	rcv := newReceiver(t, nil)
	now := clock
	d := newDeliverer(t, func() time.Time { return now })
	cfg := config(t, map[string]any{"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}}})

	req := request(cfg)
	_, err := deliver(t, d, req)
	require.NoError(t, err)
	now = now.Add(5 * time.Minute)
	req.Attempt = 2
	_, err = deliver(t, d, req)
	require.NoError(t, err)

	reqs := rcv.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, deliveryID, reqs[0].Header.Get("webhook-id"))
	require.Equal(t, deliveryID, reqs[1].Header.Get("webhook-id"))
	require.Equal(t, strconv.FormatInt(clock.Unix(), 10), reqs[0].Header.Get("webhook-timestamp"))
	require.Equal(t, strconv.FormatInt(clock.Unix()+300, 10), reqs[1].Header.Get("webhook-timestamp"))
	require.Equal(t, reqs[0].Body, reqs[1].Body, "the body (with the event's own timestamp) does not change")
	require.NotEqual(t, reqs[0].Header.Get("webhook-signature"), reqs[1].Header.Get("webhook-signature"))
	require.Equal(t, v1(t, secretA, deliveryID, clock.Unix()+300, reqs[1].Body), reqs[1].Header.Get("webhook-signature"))
}

func TestSignatureListRotation(t *testing.T) {
	rcv := newReceiver(t, nil)
	d := newDeliverer(t, fixed(clock))
	sk, pk, err := webhook.NewSigningKey()
	require.NoError(t, err)
	cfg := config(t, map[string]any{
		"url": rcv.URL,
		"secrets": []map[string]any{
			{"secret": secretA},
			{"secret": secretB, "notAfter": clock.Add(time.Hour).Format(time.RFC3339)},    // grace period: still signs
			{"secret": secretC, "notAfter": clock.Add(-time.Second).Format(time.RFC3339)}, // expired: does not
		},
		"signingKeys": []map[string]any{
			{"key": sk},
		},
	})
	_, err = deliver(t, d, request(cfg))
	require.NoError(t, err)

	got := rcv.only(t)
	ts := clock.Unix()
	sigs := strings.Split(got.Header.Get("webhook-signature"), " ")
	require.Len(t, sigs, 3)
	require.Equal(t, v1(t, secretA, deliveryID, ts, got.Body), sigs[0])
	require.Equal(t, v1(t, secretB, deliveryID, ts, got.Body), sigs[1])
	require.True(t, strings.HasPrefix(sigs[2], "v1a,"))

	// Each key alone verifies; the expired one does not.
	for _, key := range []string{secretA, secretB, pk} {
		v, err := webhook.NewVerifier(key)
		require.NoError(t, err)
		v.Now = fixed(clock)
		require.NoError(t, v.Verify(got.Body, got.Header))
	}
	v, err := webhook.NewVerifier(secretC)
	require.NoError(t, err)
	v.Now = fixed(clock)
	require.ErrorIs(t, v.Verify(got.Body, got.Header), webhook.ErrNoMatchingSignature)
}

func TestStatusMapping(t *testing.T) {
	retryDate := clock.Add(90 * time.Second).Format(http.TimeFormat)
	cases := []struct {
		name       string
		respond    http.HandlerFunc
		retry      []int
		wantErr    bool
		permanent  bool
		gone       bool
		retryAfter time.Duration
		code       int
	}{
		{name: "200", respond: status(200, "ok"), code: 200},
		{name: "201", respond: status(201, ""), code: 201},
		{name: "202", respond: status(202, "queued"), code: 202},
		{name: "204", respond: status(204, ""), code: 204},
		{name: "301 not followed", respond: status(301, "", "Location", "/elsewhere"), code: 301, wantErr: true, permanent: true},
		{name: "302 not followed", respond: status(302, "", "Location", "/elsewhere"), code: 302, wantErr: true, permanent: true},
		{name: "307 not followed", respond: status(307, "", "Location", "/elsewhere"), code: 307, wantErr: true, permanent: true},
		{name: "308 not followed", respond: status(308, "", "Location", "/elsewhere"), code: 308, wantErr: true, permanent: true},
		{name: "400", respond: status(400, "bad"), code: 400, wantErr: true, permanent: true},
		{name: "401", respond: status(401, "who"), code: 401, wantErr: true, permanent: true},
		{name: "403", respond: status(403, "no"), code: 403, wantErr: true, permanent: true},
		{name: "404", respond: status(404, "none"), code: 404, wantErr: true, permanent: true},
		{name: "408 not listed", respond: status(408, ""), code: 408, wantErr: true, permanent: true},
		{name: "409 listed in retryStatuses", respond: status(409, ""), retry: []int{409, 423}, code: 409, wantErr: true},
		{name: "410 gone", respond: status(410, "gone"), code: 410, wantErr: true, permanent: true, gone: true},
		{name: "422", respond: status(422, "{}"), code: 422, wantErr: true, permanent: true},
		{name: "429 Retry-After seconds", respond: status(429, "", "Retry-After", "120"), code: 429, wantErr: true, retryAfter: 2 * time.Minute},
		{name: "429 Retry-After date", respond: status(429, "", "Retry-After", retryDate), code: 429, wantErr: true, retryAfter: 90 * time.Second},
		{name: "429 without Retry-After", respond: status(429, ""), code: 429, wantErr: true},
		{name: "429 garbage Retry-After", respond: status(429, "", "Retry-After", "soon"), code: 429, wantErr: true},
		{name: "500", respond: status(500, "oops"), code: 500, wantErr: true},
		{name: "501", respond: status(501, ""), code: 501, wantErr: true, permanent: true},
		{name: "502", respond: status(502, ""), code: 502, wantErr: true},
		{name: "503 Retry-After date", respond: status(503, "", "Retry-After", retryDate), code: 503, wantErr: true, retryAfter: 90 * time.Second},
		{name: "503 Retry-After seconds", respond: status(503, "", "Retry-After", "7"), code: 503, wantErr: true, retryAfter: 7 * time.Second},
		{name: "504", respond: status(504, ""), code: 504, wantErr: true},
		{name: "599", respond: status(599, ""), code: 599, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, tc.respond)
			d := newDeliverer(t, fixed(clock))
			cfg := map[string]any{"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}}}
			if tc.retry != nil {
				cfg["retryStatuses"] = tc.retry
			}
			res, err := deliver(t, d, request(config(t, cfg)))
			require.Equal(t, tc.code, res.StatusCode)
			require.Len(t, rcv.requests(), 1, "one attempt, no redirect followed")
			if !tc.wantErr {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), strconv.Itoa(tc.code))
			_, isPerm := errors.AsType[*outhook.PermanentError](err)
			_, isGone := errors.AsType[*outhook.GoneError](err)
			ra, isRA := errors.AsType[*outhook.RetryAfterError](err)
			require.Equal(t, tc.permanent && !tc.gone, isPerm, "permanent: %v", err)
			require.Equal(t, tc.gone, isGone, "gone: %v", err)
			require.Equal(t, tc.retryAfter > 0, isRA, "retry-after: %v", err)
			if isRA {
				require.Equal(t, tc.retryAfter, ra.After)
			}
			se, ok := errors.AsType[*safehttp.Error](err)
			require.True(t, ok)
			require.Equal(t, safehttp.ClassHTTPStatus, se.Class)
		})
	}
}

func TestResponseExcerpt(t *testing.T) {
	big := strings.Repeat("x", 20<<10)
	rcv := newReceiver(t, status(500, big))
	d := newDeliverer(t, fixed(clock))
	res, err := deliver(t, d, request(config(t, map[string]any{"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}}})))
	require.Error(t, err)
	require.Equal(t, 500, res.StatusCode)
	require.Equal(t, big[:safehttp.DefaultMaxBody], res.Response, "the excerpt is capped at 16 KiB")
	require.NotContains(t, err.Error(), "xxx", "the body is not part of the error")
}

func TestNetworkErrors(t *testing.T) {
	t.Run("refused connection is retried", func(t *testing.T) {
		rcv := newReceiver(t, nil)
		u := rcv.URL
		rcv.Close()
		d := newDeliverer(t, fixed(clock))
		_, err := deliver(t, d, request(config(t, map[string]any{"url": u, "secrets": []map[string]any{{"secret": secretA}}})))
		require.Error(t, err)
		_, isPerm := errors.AsType[*outhook.PermanentError](err)
		require.False(t, isPerm, "%v", err)
		se, ok := errors.AsType[*safehttp.Error](err)
		require.True(t, ok)
		require.Equal(t, safehttp.ClassConnect, se.Class)
	})
	t.Run("blocked address fails for good", func(t *testing.T) {
		rcv := newReceiver(t, nil)
		d, err := webhook.New(&webhook.Options{Now: fixed(clock)}) // default client: loopback is refused
		require.NoError(t, err)
		_, err = deliver(t, d, request(config(t, map[string]any{"url": rcv.URL + "/?token=hunter22", "secrets": []map[string]any{{"secret": secretA}}})))
		_, isPerm := errors.AsType[*outhook.PermanentError](err)
		require.True(t, isPerm, "%v", err)
		require.ErrorIs(t, err, safehttp.ErrBlocked)
		require.NotContains(t, err.Error(), "hunter22")
		require.Empty(t, rcv.requests())
	})
	t.Run("canceled context", func(t *testing.T) {
		rcv := newReceiver(t, nil)
		d := newDeliverer(t, fixed(clock))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := d.Deliver(ctx, request(config(t, map[string]any{"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}}})))
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestAuth(t *testing.T) {
	t.Run("bearer", func(t *testing.T) {
		rcv := newReceiver(t, nil)
		d := newDeliverer(t, fixed(clock))
		_, err := deliver(t, d, request(config(t, map[string]any{
			"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}},
			"auth": map[string]any{"type": "bearer", "token": "tok_abc123"},
		})))
		require.NoError(t, err)
		require.Equal(t, "Bearer tok_abc123", rcv.only(t).Header.Get("Authorization"))
	})
	t.Run("basic", func(t *testing.T) {
		rcv := newReceiver(t, nil)
		d := newDeliverer(t, fixed(clock))
		_, err := deliver(t, d, request(config(t, map[string]any{
			"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}},
			"auth": map[string]any{"type": "basic", "username": "outhook", "password": "pa ss:wörd"},
		})))
		require.NoError(t, err)
		got := rcv.only(t)
		r := &http.Request{Header: got.Header}
		user, pass, ok := r.BasicAuth()
		require.True(t, ok)
		require.Equal(t, "outhook", user)
		require.Equal(t, "pa ss:wörd", pass)
	})
	t.Run("custom header", func(t *testing.T) {
		rcv := newReceiver(t, nil)
		d := newDeliverer(t, fixed(clock))
		_, err := deliver(t, d, request(config(t, map[string]any{
			"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}},
			"headers": map[string]string{"Authorization": "Token abc", "X-Api-Key": "key-123", "x-tenant": "acme"},
		})))
		require.NoError(t, err)
		got := rcv.only(t)
		require.Equal(t, "Token abc", got.Header.Get("Authorization"))
		require.Equal(t, "key-123", got.Header.Get("X-Api-Key"))
		require.Equal(t, "acme", got.Header.Get("X-Tenant"))
		v, err := webhook.NewVerifier(secretA)
		require.NoError(t, err)
		v.Now = fixed(clock)
		require.NoError(t, v.Verify(got.Body, got.Header), "extra headers are not signed and do not disturb the signature")
	})
}

func TestMethods(t *testing.T) {
	for _, m := range []string{"POST", "PUT", "PATCH"} {
		t.Run(m, func(t *testing.T) {
			rcv := newReceiver(t, nil)
			d := newDeliverer(t, fixed(clock))
			_, err := deliver(t, d, request(config(t, map[string]any{"url": rcv.URL, "method": m, "secrets": []map[string]any{{"secret": secretA}}})))
			require.NoError(t, err)
			got := rcv.only(t)
			require.Equal(t, m, got.Method)
			require.Equal(t, v1(t, secretA, deliveryID, clock.Unix(), got.Body), got.Header.Get("webhook-signature"))
		})
	}
}

func TestRawBody(t *testing.T) {
	rcv := newReceiver(t, nil)
	d := newDeliverer(t, fixed(clock))
	req := request(config(t, map[string]any{"url": rcv.URL, "body": "raw", "secrets": []map[string]any{{"secret": secretA}}}))
	req.Payload = json.RawMessage("{ \"spaced\" : [1, 2,3], \"html\": \"<b>\" }")
	_, err := deliver(t, d, req)
	require.NoError(t, err)
	got := rcv.only(t)
	require.Equal(t, string(req.Payload), string(got.Body), "the payload as it is")
	require.Equal(t, v1(t, secretA, deliveryID, clock.Unix(), got.Body), got.Header.Get("webhook-signature"))
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
}

func TestEnvelopeEdgeCases(t *testing.T) {
	rcv := newReceiver(t, nil)
	d := newDeliverer(t, fixed(clock))
	cfg := config(t, map[string]any{"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}}})

	req := request(cfg)
	req.Payload = nil
	req.OccurredAt = time.Date(2026, 1, 2, 4, 4, 5, 0, time.FixedZone("CET", 3600))
	_, err := deliver(t, d, req)
	require.NoError(t, err)
	require.Equal(t, `{"type":"incident.incident.created","timestamp":"2026-01-02T03:04:05Z","data":null}`, string(rcv.only(t).Body),
		"an empty payload is null; the timestamp is in UTC")

	req = request(cfg)
	req.Payload = json.RawMessage(`{"a":`)
	_, err = deliver(t, d, req)
	_, isPerm := errors.AsType[*outhook.PermanentError](err)
	require.True(t, isPerm, "%v", err)
	require.ErrorContains(t, err, "payload is not valid JSON")
	require.Len(t, rcv.requests(), 1, "nothing sent")
}

func TestBodyLimit(t *testing.T) {
	rcv := newReceiver(t, nil)
	d, err := webhook.New(&webhook.Options{HTTP: loopbackClient(t), Now: fixed(clock), MaxBody: 200})
	require.NoError(t, err)
	cfg := config(t, map[string]any{"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}}})

	req := request(cfg)
	req.Payload = json.RawMessage(`{"s":"` + strings.Repeat("a", 300) + `"}`)
	_, err = deliver(t, d, req)
	_, isPerm := errors.AsType[*outhook.PermanentError](err)
	require.True(t, isPerm, "%v", err)
	require.ErrorContains(t, err, "more than the limit of 200")
	require.Empty(t, rcv.requests())

	_, err = deliver(t, d, request(cfg)) // the usual payload fits
	require.NoError(t, err)

	_, err = webhook.New(&webhook.Options{MaxBody: -1})
	require.ErrorContains(t, err, "MaxBody")
}

// TestNoActiveKeyAtDelivery: a config valid when saved whose keys have all
// expired since fails for good, and sends nothing unsigned.
func TestNoActiveKeyAtDelivery(t *testing.T) {
	rcv := newReceiver(t, nil)
	now := clock
	d := newDeliverer(t, func() time.Time { return now })
	cfg := config(t, map[string]any{"url": rcv.URL, "secrets": []map[string]any{
		{"secret": secretA, "notAfter": clock.Add(time.Hour).Format(time.RFC3339)},
	}})
	require.NoError(t, d.ValidateConfig(cfg))

	now = clock.Add(time.Hour)
	require.ErrorContains(t, d.ValidateConfig(cfg), "secrets has no active secret")
	_, err := deliver(t, d, request(cfg))
	_, isPerm := errors.AsType[*outhook.PermanentError](err)
	require.True(t, isPerm, "%v", err)
	require.ErrorIs(t, err, outhook.ErrInvalidConfig)
	require.Empty(t, rcv.requests())
}

func TestDeliveryIDChecked(t *testing.T) {
	rcv := newReceiver(t, nil)
	d := newDeliverer(t, fixed(clock))
	req := request(config(t, map[string]any{"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}}}))
	req.DeliveryID = "dlv.1"
	_, err := deliver(t, d, req)
	_, isPerm := errors.AsType[*outhook.PermanentError](err)
	require.True(t, isPerm, "%v", err)
	require.ErrorContains(t, err, "'.'")
	require.Empty(t, rcv.requests())
}

// TestSecretsNeverLeak: an endpoint that echoes the request, answering
// 400, 500 and 200; neither the error nor the attempt's response excerpt
// holds a signing secret, token, password or extra header value.
func TestSecretsNeverLeak(t *testing.T) {
	echo := func(code int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(code)
			for k, vs := range r.Header {
				fmt.Fprintf(w, "%s: %s\n", k, strings.Join(vs, ","))
			}
			user, pass, _ := r.BasicAuth()
			fmt.Fprintf(w, "user=%s pass=%s\n", user, pass)
			fmt.Fprintf(w, "url=%s\n", r.URL)
		}
	}
	sk, _, err := webhook.NewSigningKey()
	require.NoError(t, err)
	for _, code := range []int{200, 400, 410, 500} {
		for _, auth := range []map[string]any{
			{"type": "bearer", "token": "tok_supersecret"},
			{"type": "basic", "username": "outhook", "password": "pw-supersecret"},
		} {
			t.Run(fmt.Sprintf("%d %s", code, auth["type"]), func(t *testing.T) {
				rcv := newReceiver(t, echo(code))
				d := newDeliverer(t, fixed(clock))
				cfg := config(t, map[string]any{
					"url":         rcv.URL + "/in?token=querysecret",
					"secrets":     []map[string]any{{"secret": secretA}},
					"signingKeys": []map[string]any{{"key": sk}},
					"headers":     map[string]string{"X-Api-Key": "hdr-supersecret"},
					"auth":        auth,
				})
				res, err := deliver(t, d, request(cfg))
				text := res.Response
				if err != nil {
					text += "\n" + err.Error()
				}
				require.Contains(t, res.Response, "[redacted]", "the echo was redacted")
				basic := base64.StdEncoding.EncodeToString([]byte("outhook:pw-supersecret"))
				for _, secret := range []string{secretA, strings.TrimPrefix(secretA, "whsec_"), sk, "tok_supersecret", "pw-supersecret", basic, "hdr-supersecret"} {
					require.NotContains(t, text, secret)
				}
				if err != nil {
					require.NotContains(t, err.Error(), "querysecret", "query values are redacted in errors")
				}
			})
		}
	}
}

func TestValidateConfig(t *testing.T) {
	d := newDeliverer(t, fixed(clock))
	sk, pk, err := webhook.NewSigningKey()
	require.NoError(t, err)
	ok := []map[string]any{{"secret": secretA}}
	cases := []struct {
		name   string
		cfg    string
		fields []string // FieldError.Field of each problem, in order
		// mustNotContain is a secret the error must not quote.
		mustNotContain string
		// decodeErr: the config does not decode (no field list).
		decodeErr bool
	}{
		{name: "empty", cfg: `{}`, fields: []string{"url"}},
		{name: "no keys", cfg: `{"url":"https://example.com/h"}`, fields: []string{"secrets"}},
		{name: "only a signing key", cfg: `{"url":"https://example.com/h","signingKeys":[{"key":"` + sk + `"}]}`},
		{name: "bad url", cfg: `{"url":"ftp://example.com/h","secrets":[{"secret":"` + secretA + `"}]}`, fields: []string{"url"}},
		{name: "url credentials", cfg: `{"url":"https://u:p@example.com/h","secrets":[{"secret":"` + secretA + `"}]}`, fields: []string{"url"}},
		{name: "secret without prefix", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="}]}`,
			fields: []string{"secrets[0].secret"}, mustNotContain: "QUFBQUFBQUFB"},
		{name: "secret too short", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"whsec_c2hvcnRzZWNyZXQ="}]}`,
			fields: []string{"secrets[0].secret"}, mustNotContain: "c2hvcnRzZWNyZXQ"},
		{name: "secret too long", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"whsec_` + base64.StdEncoding.EncodeToString(make([]byte, 65)) + `"}]}`,
			fields: []string{"secrets[0].secret"}},
		{name: "secret not base64", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"whsec_not*base64!!notbase64!!notbase64!!"}]}`,
			fields: []string{"secrets[0].secret"}, mustNotContain: "not*base64"},
		{name: "secret unpadded", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + strings.TrimRight(secretA, "=") + `"}]}`,
			fields: []string{"secrets[0].secret"}},
		{name: "public key as signing key", cfg: `{"url":"https://example.com/h","signingKeys":[{"key":"` + pk + `"}]}`,
			fields: []string{"signingKeys[0].key"}},
		{name: "signing key wrong size", cfg: `{"url":"https://example.com/h","signingKeys":[{"key":"whsk_` + base64.StdEncoding.EncodeToString(make([]byte, 40)) + `"}]}`,
			fields: []string{"signingKeys[0].key"}},
		{name: "missing secret field", cfg: `{"url":"https://example.com/h","secrets":[{"notAfter":"2030-01-01T00:00:00Z"}]}`, fields: []string{"secrets[0].secret"}},
		{name: "all expired", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `","notAfter":"2025-01-01T00:00:00Z"}]}`, fields: []string{"secrets"}},
		{name: "one of two expired", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `","notAfter":"2025-01-01T00:00:00Z"},{"secret":"` + secretB + `"}]}`},
		{name: "bad notAfter", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `","notAfter":"tomorrow"}]}`, decodeErr: true, mustNotContain: secretA},
		{name: "method", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"method":"GET"}`, fields: []string{"method"}},
		{name: "body", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"body":"xml"}`, fields: []string{"body"}},
		{name: "reserved headers", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"headers":{"webhook-id":"x","Content-Type":"text/plain","Host":"evil","Transfer-Encoding":"chunked","User-Agent":"me"}}`,
			fields: []string{"headers.Content-Type", "headers.Host", "headers.Transfer-Encoding", "headers.User-Agent", "headers.webhook-id"}},
		{name: "bad header name", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"headers":{"X Bad":"v","":"v"}}`, fields: []string{"headers.", "headers.X Bad"}},
		{name: "header twice", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"headers":{"X-Tenant":"a","x-tenant":"b"}}`, fields: []string{"headers.x-tenant"}},
		{name: "bad header value", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"headers":{"X-Key":"v\r\nInjected: 1"}}`,
			fields: []string{"headers.X-Key"}, mustNotContain: "Injected"},
		{name: "authorization twice", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"headers":{"Authorization":"x"},"auth":{"type":"bearer","token":"t"}}`,
			fields: []string{"headers.Authorization"}},
		{name: "auth type", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"auth":{"type":"digest"}}`, fields: []string{"auth.type"}},
		{name: "bearer without token", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"auth":{"type":"bearer"}}`, fields: []string{"auth.token"}},
		{name: "bearer token with space", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"auth":{"type":"bearer","token":"a secrettoken"}}`,
			fields: []string{"auth.token"}, mustNotContain: "secrettoken"},
		{name: "bearer with password", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"auth":{"type":"bearer","token":"t","password":"pw-secret"}}`,
			fields: []string{"auth"}, mustNotContain: "pw-secret"},
		{name: "basic without username", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"auth":{"type":"basic","password":"pw"}}`, fields: []string{"auth.username"}},
		{name: "basic username colon", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"auth":{"type":"basic","username":"a:b"}}`, fields: []string{"auth.username"}},
		{name: "basic with token", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"auth":{"type":"basic","username":"u","token":"tok-secret"}}`,
			fields: []string{"auth"}, mustNotContain: "tok-secret"},
		{name: "basic password control", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"auth":{"type":"basic","username":"u","password":"pw\nsecret"}}`,
			fields: []string{"auth.password"}, mustNotContain: "secret\""},
		{name: "retry statuses", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"retryStatuses":[409,500,399]}`, fields: []string{"retryStatuses[1]", "retryStatuses[2]"}},
		{name: "retry 410", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"retryStatuses":[408,410]}`, fields: []string{"retryStatuses[1]"}},
		{name: "unknown field", cfg: `{"url":"https://example.com/h","secrets":[{"secret":"` + secretA + `"}],"signingSecret":"x"}`, decodeErr: true},
		{name: "too many secrets", cfg: string(config(t, map[string]any{"url": "https://example.com/h", "secrets": slices.Repeat(ok, 11)})), fields: []string{"secrets"}},
		{name: "full", cfg: string(config(t, map[string]any{
			"url": "https://example.com/h?x=1", "method": "PATCH", "body": "raw",
			"secrets":       []map[string]any{{"secret": secretA, "notAfter": "2030-01-01T00:00:00Z"}, {"secret": secretC}},
			"signingKeys":   []map[string]any{{"key": sk}},
			"headers":       map[string]string{"X-Tenant": "acme"},
			"auth":          map[string]any{"type": "basic", "username": "u", "password": ""},
			"retryStatuses": []int{408, 409},
		}))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := d.ValidateConfig(json.RawMessage(tc.cfg))
			if tc.fields == nil && !tc.decodeErr {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.ErrorIs(t, err, outhook.ErrInvalidConfig)
			ce, ok := errors.AsType[*outhook.ConfigError](err)
			require.True(t, ok)
			require.Equal(t, webhook.ID, ce.Deliverer)
			var fields []string
			for _, f := range ce.Fields {
				fields = append(fields, f.Field)
				require.True(t, strings.HasPrefix(f.Message, f.Field), "message %q names field %q", f.Message, f.Field)
			}
			if tc.decodeErr {
				require.Empty(t, fields)
				require.Error(t, ce.Err)
			} else {
				slices.Sort(fields)
				require.Equal(t, tc.fields, fields, "%v", err)
			}
			if tc.mustNotContain != "" {
				require.NotContains(t, err.Error(), tc.mustNotContain)
			}
			require.NotContains(t, err.Error(), secretA)
			require.NotContains(t, err.Error(), sk)
		})
	}
}

// TestConfigPrintsNoSecret: printing a decoded Config (%v, %+v, %#v) hides
// secrets, keys and credentials.
func TestConfigPrintsNoSecret(t *testing.T) {
	sk, _, err := webhook.NewSigningKey()
	require.NoError(t, err)
	cfg := webhook.Config{
		URL:         "https://example.com",
		Secrets:     []webhook.Secret{{Secret: secretA, NotAfter: clock}},
		SigningKeys: []webhook.SigningKey{{Key: sk}},
		Auth:        &webhook.Auth{Type: "basic", Username: "u", Password: "pw-supersecret"},
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, cfg) + fmt.Sprintf(format, *cfg.Auth)
		require.NotContains(t, out, strings.TrimPrefix(secretA, "whsec_"), format)
		require.NotContains(t, out, strings.TrimPrefix(sk, "whsk_"), format)
		require.NotContains(t, out, "pw-supersecret", format)
	}
	require.Equal(t, "whsec_[redacted] notAfter 2026-01-02T03:04:05Z", cfg.Secrets[0].String())
	require.Equal(t, "basic u:[redacted]", cfg.Auth.String())
}

func TestConfigSchemaGolden(t *testing.T) {
	d := newDeliverer(t, nil)
	got := d.ConfigSchema()
	require.True(t, json.Valid(got))
	path := filepath.Join("testdata", "config.schema.json")
	if *update {
		require.NoError(t, os.WriteFile(path, append(bytes.TrimSpace(got), '\n'), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./webhook -run TestConfigSchemaGolden -update")
	require.JSONEq(t, string(want), string(got))
	require.Equal(t, string(bytes.TrimSpace(want)), string(bytes.TrimSpace(got)))

	var schema struct {
		Required   []string                   `json:"required"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(got, &schema))
	require.Equal(t, []string{"url"}, schema.Required)
	for _, p := range []string{"url", "secrets", "signingKeys", "method", "body", "headers", "auth", "retryStatuses"} {
		require.Contains(t, schema.Properties, p)
	}
}

func TestNewDefaults(t *testing.T) {
	d, err := webhook.New(nil)
	require.NoError(t, err)
	require.Equal(t, "webhook", d.ID())
	require.Equal(t, webhook.ID, d.ID())
}

// TestSendTest runs Client.SendTest against a receiver that verifies the
// signature with the reference library.
func TestSendTest(t *testing.T) {
	secret, err := webhook.NewSecret()
	require.NoError(t, err)
	rcv := newReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	d := newDeliverer(t, nil)
	c := outhooktest.NewClient(t, &outhook.Config{Deliverers: []outhook.Deliverer{d}})
	ctx := context.Background()
	sub, err := c.CreateSubscription(ctx, outhook.Subscription{
		Name: "test receiver", Events: []string{"incident.**"}, DelivererID: webhook.ID,
		Config: config(t, map[string]any{"url": rcv.URL + "/hooks", "secrets": []map[string]any{{"secret": secret}}}),
	})
	require.NoError(t, err)

	a, err := c.SendTest(ctx, sub.ID)
	require.NoError(t, err)
	require.Equal(t, outhook.AttemptSucceeded, a.Outcome)
	require.Equal(t, outhook.TriggerTest, a.Trigger)
	require.Equal(t, webhook.ID, a.DelivererID)
	require.Equal(t, 204, a.StatusCode)

	got := rcv.only(t)
	require.NoError(t, referenceVerify(t, secret, got.Body, got.Header))
	require.NoError(t, webhook.Verify(got.Body, got.Header, secret))
	require.True(t, strings.HasPrefix(got.Header.Get("webhook-id"), "test_"))
	var env struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      struct {
			Test           bool   `json:"test"`
			Message        string `json:"message"`
			SubscriptionID string `json:"subscriptionId"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(got.Body, &env))
	require.Equal(t, outhook.TestEventID, env.Type)
	require.False(t, env.Timestamp.IsZero())
	require.True(t, env.Data.Test)
	require.Equal(t, sub.ID, env.Data.SubscriptionID)
	require.Contains(t, env.Data.Message, "test event")

	// A config the deliverer refuses is refused when the subscription is
	// saved, naming the field.
	_, err = c.CreateSubscription(ctx, outhook.Subscription{
		Events: []string{"incident.**"}, DelivererID: webhook.ID,
		Config: config(t, map[string]any{"url": rcv.URL}),
	})
	require.ErrorIs(t, err, outhook.ErrInvalidSubscription)
	require.ErrorContains(t, err, "config.secrets")
}

// TestSendTestFailure: a failing test attempt reports the status and the
// error, and the response excerpt.
func TestSendTestFailure(t *testing.T) {
	rcv := newReceiver(t, status(http.StatusUnauthorized, "signature mismatch"))
	d := newDeliverer(t, nil)
	c := outhooktest.NewClient(t, &outhook.Config{Deliverers: []outhook.Deliverer{d}})
	ctx := context.Background()
	sub, err := c.CreateSubscription(ctx, outhook.Subscription{
		Events: []string{"**"}, DelivererID: webhook.ID,
		Config: config(t, map[string]any{"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}}}),
	})
	require.NoError(t, err)
	a, err := c.SendTest(ctx, sub.ID)
	require.Error(t, err)
	require.Equal(t, outhook.AttemptPermanent, a.Outcome)
	require.Equal(t, 401, a.StatusCode)
	require.Equal(t, "signature mismatch", a.Response)
	require.Equal(t, outhook.ErrorClassHTTPStatus, a.ErrorClass)
	require.NotContains(t, a.Error, secretA)
}

// A prepared config is reused between deliveries, but never past the
// moment one of its keys expires.
func TestCachedConfigFollowsKeyExpiry(t *testing.T) {
	rcv := newReceiver(t, nil)
	now := clock
	var mu sync.Mutex
	d := newDeliverer(t, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	cfg := config(t, map[string]any{"url": rcv.URL, "secrets": []map[string]any{
		{"secret": secretA},
		{"secret": secretB, "notAfter": clock.Add(time.Hour).Format(time.RFC3339)},
	}})
	signatures := func() int {
		_, err := deliver(t, d, request(cfg))
		require.NoError(t, err)
		reqs := rcv.requests()
		return len(strings.Split(reqs[len(reqs)-1].Header.Get("webhook-signature"), " "))
	}
	require.Equal(t, 2, signatures())
	require.Equal(t, 2, signatures(), "from the cache")
	mu.Lock()
	now = clock.Add(time.Hour)
	mu.Unlock()
	require.Equal(t, 1, signatures(), "secretB has expired: the cached config is not used")
}
