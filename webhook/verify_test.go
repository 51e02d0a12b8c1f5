package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outhook/outhook/webhook"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
)

// signed returns headers for a message signed with keys at ts.
func signed(t testing.TB, id string, ts time.Time, body []byte, keys ...string) http.Header {
	t.Helper()
	sig, err := webhook.Sign(id, ts, body, keys...)
	require.NoError(t, err)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	return h
}

func verifierAt(t testing.TB, now time.Time, keys ...string) *webhook.Verifier {
	t.Helper()
	v, err := webhook.NewVerifier(keys...)
	require.NoError(t, err)
	v.Now = fixed(now)
	return v
}

func TestVerifyAccepts(t *testing.T) {
	body := []byte(`{"type":"incident.incident.created","data":{}}`)
	sk, pk, err := webhook.NewSigningKey()
	require.NoError(t, err)

	for name, tc := range map[string]struct {
		signWith, verifyWith []string
	}{
		"v1":                            {[]string{secretA}, []string{secretA}},
		"v1a":                           {[]string{sk}, []string{pk}},
		"v1 among several signatures":   {[]string{secretB, secretA, sk}, []string{secretA}},
		"v1a among several signatures":  {[]string{secretB, secretA, sk}, []string{pk}},
		"one of several trusted keys":   {[]string{secretC}, []string{secretA, pk, secretC}},
		"24-byte and 64-byte secrets":   {[]string{secretB, secretC}, []string{secretC}},
		"v1a checked after failing v1s": {[]string{secretB, sk}, []string{secretA, pk}},
	} {
		t.Run(name, func(t *testing.T) {
			h := signed(t, deliveryID, clock, body, tc.signWith...)
			require.NoError(t, verifierAt(t, clock, tc.verifyWith...).Verify(body, h))
		})
	}

	t.Run("reference library signature", func(t *testing.T) {
		wh, err := standardwebhooks.NewWebhook(secretA)
		require.NoError(t, err)
		sig, err := wh.Sign(deliveryID, clock, body)
		require.NoError(t, err)
		h := http.Header{"Webhook-Id": {deliveryID}, "Webhook-Timestamp": {strconv.FormatInt(clock.Unix(), 10)}, "Webhook-Signature": {sig}}
		require.NoError(t, verifierAt(t, clock, secretA).Verify(body, h))
	})
	t.Run("lower-case header keys set by hand", func(t *testing.T) {
		sig, err := webhook.Sign(deliveryID, clock, body, secretA)
		require.NoError(t, err)
		h := http.Header{"webhook-id": {deliveryID}, "webhook-timestamp": {strconv.FormatInt(clock.Unix(), 10)}, "webhook-signature": {sig}}
		require.NoError(t, verifierAt(t, clock, secretA).Verify(body, h))
	})
	t.Run("signature header split over two lines", func(t *testing.T) {
		h := signed(t, deliveryID, clock, body, secretB, secretA)
		sigs := strings.Fields(h.Get("webhook-signature"))
		h["Webhook-Signature"] = sigs
		require.NoError(t, verifierAt(t, clock, secretA).Verify(body, h))
	})
	t.Run("unknown versions are skipped", func(t *testing.T) {
		h := signed(t, deliveryID, clock, body, secretA)
		h.Set("webhook-signature", "v2,abc v1 nocomma v1,!!!notbase64 v1a,short "+h.Get("webhook-signature"))
		require.NoError(t, verifierAt(t, clock, secretA).Verify(body, h))
	})
	t.Run("Verify convenience", func(t *testing.T) {
		now := time.Now()
		h := signed(t, deliveryID, now, body, secretA)
		require.NoError(t, webhook.Verify(body, h, secretA))
	})
}

func TestVerifyRejects(t *testing.T) {
	body := []byte(`{"type":"incident.incident.created","data":{"n":1}}`)
	sk, pk, err := webhook.NewSigningKey()
	require.NoError(t, err)
	good := func() http.Header { return signed(t, deliveryID, clock, body, secretA, sk) }

	cases := []struct {
		name   string
		body   []byte
		header func() http.Header
		now    time.Time
		tol    time.Duration
		keys   []string
		want   error
		text   string
	}{
		{name: "tampered body", body: []byte(`{"type":"incident.incident.created","data":{"n":2}}`), want: webhook.ErrNoMatchingSignature},
		{name: "body with a trailing newline", body: append(append([]byte(nil), body...), '\n'), want: webhook.ErrNoMatchingSignature},
		{name: "wrong id", header: func() http.Header { h := good(); h.Set("webhook-id", "dlv_other"); return h }, want: webhook.ErrNoMatchingSignature},
		{name: "timestamp changed", header: func() http.Header {
			h := good()
			h.Set("webhook-timestamp", strconv.FormatInt(clock.Unix()+1, 10))
			return h
		}, want: webhook.ErrNoMatchingSignature},
		{name: "wrong secret", keys: []string{secretB}, want: webhook.ErrNoMatchingSignature,
			text: "webhook: no matching signature: 2 signatures (1 v1, 1 v1a, 0 other) checked against 1 secret and 0 public keys"},
		{name: "v1 signature of a v1a key", header: func() http.Header {
			h := good()
			sigs := strings.Fields(h.Get("webhook-signature"))
			h.Set("webhook-signature", "v1,"+strings.TrimPrefix(sigs[1], "v1a,"))
			return h
		}, keys: []string{pk, secretB}, want: webhook.ErrNoMatchingSignature},
		{name: "v1a signature relabelled v1", header: func() http.Header {
			h := good()
			sigs := strings.Fields(h.Get("webhook-signature"))
			h.Set("webhook-signature", "v1a,"+strings.TrimPrefix(sigs[0], "v1,"))
			return h
		}, want: webhook.ErrNoMatchingSignature},
		{name: "too old", now: clock.Add(5*time.Minute + time.Second), want: webhook.ErrTimestampTooOld,
			text: "webhook: timestamp too old: webhook-timestamp 1767323045 is 5m1s before now (tolerance 5m0s)"},
		{name: "too new", now: clock.Add(-5*time.Minute - time.Second), want: webhook.ErrTimestampTooNew,
			text: "webhook: timestamp too new: webhook-timestamp 1767323045 is 5m1s after now (tolerance 5m0s)"},
		{name: "custom tolerance old", now: clock.Add(61 * time.Second), tol: time.Minute, want: webhook.ErrTimestampTooOld},
		{name: "custom tolerance new", now: clock.Add(-61 * time.Second), tol: time.Minute, want: webhook.ErrTimestampTooNew},
		{name: "missing id", header: func() http.Header { h := good(); h.Del("webhook-id"); return h }, want: webhook.ErrMissingHeaders,
			text: "webhook: missing headers: webhook-id"},
		{name: "missing timestamp", header: func() http.Header { h := good(); h.Del("webhook-timestamp"); return h }, want: webhook.ErrMissingHeaders},
		{name: "missing signature", header: func() http.Header { h := good(); h.Set("webhook-signature", "  "); return h }, want: webhook.ErrMissingHeaders},
		{name: "no headers", header: func() http.Header { return http.Header{} }, want: webhook.ErrMissingHeaders,
			text: "webhook: missing headers: webhook-id, webhook-timestamp, webhook-signature"},
		{name: "nil headers", header: func() http.Header { return nil }, want: webhook.ErrMissingHeaders},
		{name: "timestamp not a number", header: func() http.Header { h := good(); h.Set("webhook-timestamp", "yesterday"); return h }, want: webhook.ErrInvalidHeaders},
		{name: "timestamp in milliseconds", header: func() http.Header {
			h := good()
			h.Set("webhook-timestamp", strconv.FormatInt(clock.UnixMilli(), 10))
			return h
		}, want: webhook.ErrTimestampTooNew},
		{name: "timestamp with sign", header: func() http.Header {
			h := good()
			h.Set("webhook-timestamp", "+"+strconv.FormatInt(clock.Unix(), 10))
			return h
		}, want: webhook.ErrInvalidHeaders},
		{name: "timestamp with leading zero", header: func() http.Header {
			h := good()
			h.Set("webhook-timestamp", "0"+strconv.FormatInt(clock.Unix(), 10))
			return h
		}, want: webhook.ErrInvalidHeaders},
		{name: "timestamp overflow", header: func() http.Header { h := good(); h.Set("webhook-timestamp", "99999999999999999999"); return h }, want: webhook.ErrInvalidHeaders},
		{name: "id with a dot", header: func() http.Header { h := good(); h.Set("webhook-id", "dlv.1"); return h }, want: webhook.ErrInvalidHeaders},
		{name: "two ids", header: func() http.Header { h := good(); h.Add("webhook-id", "dlv_2"); return h }, want: webhook.ErrInvalidHeaders},
		{name: "too many signatures", header: func() http.Header {
			h := good()
			h.Set("webhook-signature", strings.Repeat("v1,AAAA ", webhook.MaxSignatures)+h.Get("webhook-signature"))
			return h
		}, want: webhook.ErrInvalidHeaders, text: "webhook: invalid headers: webhook-signature lists 22 signatures, more than 20"},
	}
	sentinels := []error{webhook.ErrMissingHeaders, webhook.ErrInvalidHeaders, webhook.ErrTimestampTooOld, webhook.ErrTimestampTooNew, webhook.ErrNoMatchingSignature}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, h, now, keys := body, good(), clock, []string{secretA, pk}
			if tc.body != nil {
				b = tc.body
			}
			if tc.header != nil {
				h = tc.header()
			}
			if !tc.now.IsZero() {
				now = tc.now
			}
			if tc.keys != nil {
				keys = tc.keys
			}
			v := verifierAt(t, now, keys...)
			v.Tolerance = tc.tol
			err := v.Verify(b, h)
			require.ErrorIs(t, err, tc.want)
			for _, s := range sentinels {
				if s != tc.want {
					require.False(t, errors.Is(err, s), "%v also matches %v", err, s)
				}
			}
			if tc.text != "" {
				require.EqualError(t, err, tc.text)
			}
		})
	}
}

// TestVerifyToleranceEdges: exactly the tolerance away is accepted, one
// second more is not, in both directions.
func TestVerifyToleranceEdges(t *testing.T) {
	body := []byte("{}")
	h := signed(t, deliveryID, clock, body, secretA)
	for _, tc := range []struct {
		now  time.Time
		want error
	}{
		{clock.Add(webhook.DefaultTolerance), nil},
		{clock.Add(-webhook.DefaultTolerance), nil},
		{clock.Add(webhook.DefaultTolerance + time.Second), webhook.ErrTimestampTooOld},
		{clock.Add(-webhook.DefaultTolerance - time.Second), webhook.ErrTimestampTooNew},
	} {
		err := verifierAt(t, tc.now, secretA).Verify(body, h)
		if tc.want == nil {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, tc.want)
		}
	}
}

func TestNewVerifierErrors(t *testing.T) {
	sk, _, err := webhook.NewSigningKey()
	require.NoError(t, err)
	for _, tc := range []struct {
		keys []string
		want string
	}{
		{nil, "no secret or public key to verify with"},
		{[]string{secretA, sk}, "key 2: invalid key: a whsk_ signing key is the sender's private key; a receiver verifies with its whpk_ public key"},
		{[]string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "key 1: invalid key: want a whsec_ secret or a whpk_ public key"},
		{[]string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"}, "key 1: invalid key: secret is not valid base64"},
		{[]string{"whpk_" + strings.TrimPrefix(secretC, "whsec_")}, "key 1: invalid key: public key decodes to 64 bytes, want 32"},
		{[]string{"whpk_AAAA"}, "public key decodes to 3 bytes, want 32"},
	} {
		_, err := webhook.NewVerifier(tc.keys...)
		require.ErrorIs(t, err, webhook.ErrInvalidKey)
		require.ErrorContains(t, err, tc.want)
		require.NotContains(t, err.Error(), "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS")
		require.NotContains(t, err.Error(), strings.TrimPrefix(sk, "whsk_"))
		require.ErrorIs(t, webhook.Verify(nil, nil, tc.keys...), webhook.ErrInvalidKey)
	}
}
