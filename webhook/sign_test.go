package webhook_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
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

// referenceVerify verifies a message with the reference Go library of the
// Standard Webhooks project, an implementation independent of ours. It
// checks the timestamp against the real clock.
func referenceVerify(t testing.TB, secret string, body []byte, h http.Header) error {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	return wh.Verify(body, h)
}

// TestReferenceLibraryVerifiesDeliveries: what the deliverer sends verifies
// with the reference library, with each active secret alone (rotation),
// alongside v1a signatures it does not know, and not with an expired
// secret.
func TestReferenceLibraryVerifiesDeliveries(t *testing.T) {
	sk, _, err := webhook.NewSigningKey()
	require.NoError(t, err)
	for _, mode := range []string{"envelope", "raw"} {
		t.Run(mode, func(t *testing.T) {
			rcv := newReceiver(t, nil)
			d := newDeliverer(t, nil) // the real clock: the reference library uses it
			cfg := config(t, map[string]any{
				"url":  rcv.URL,
				"body": mode,
				"secrets": []map[string]any{
					{"secret": secretA},
					{"secret": secretB, "notAfter": time.Now().Add(time.Hour).Format(time.RFC3339)},
					{"secret": secretC, "notAfter": time.Now().Add(-time.Minute).Format(time.RFC3339)},
				},
				"signingKeys": []map[string]any{{"key": sk}},
			})
			_, err := deliver(t, d, request(cfg))
			require.NoError(t, err)
			got := rcv.only(t)

			require.NoError(t, referenceVerify(t, secretA, got.Body, got.Header), "the new secret alone")
			require.NoError(t, referenceVerify(t, secretB, got.Body, got.Header), "the old secret alone, in its grace period")
			require.ErrorIs(t, referenceVerify(t, secretC, got.Body, got.Header), standardwebhooks.ErrNoMatchingSignature, "the expired secret does not sign")

			tampered := append([]byte(nil), got.Body...)
			tampered[len(tampered)-2] ^= 1
			require.ErrorIs(t, referenceVerify(t, secretA, tampered, got.Header), standardwebhooks.ErrNoMatchingSignature)
		})
	}
}

// TestReferenceLibraryTolerance: the timestamp is the attempt's, and the
// reference library applies its 5-minute tolerance to it.
func TestReferenceLibraryTolerance(t *testing.T) {
	for _, tc := range []struct {
		skew time.Duration
		want error
	}{
		{0, nil},
		{-4 * time.Minute, nil},
		{4 * time.Minute, nil},
		{-10 * time.Minute, standardwebhooks.ErrMessageTooOld},
		{10 * time.Minute, standardwebhooks.ErrMessageTooNew},
	} {
		t.Run(tc.skew.String(), func(t *testing.T) {
			rcv := newReceiver(t, nil)
			d := newDeliverer(t, func() time.Time { return time.Now().Add(tc.skew) })
			_, err := deliver(t, d, request(config(t, map[string]any{"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}}})))
			require.NoError(t, err)
			got := rcv.only(t)
			err = referenceVerify(t, secretA, got.Body, got.Header)
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.want)
			}
			// Our verifier agrees.
			err = webhook.Verify(got.Body, got.Header, secretA)
			switch tc.want {
			case nil:
				require.NoError(t, err)
			case standardwebhooks.ErrMessageTooOld:
				require.ErrorIs(t, err, webhook.ErrTimestampTooOld)
			case standardwebhooks.ErrMessageTooNew:
				require.ErrorIs(t, err, webhook.ErrTimestampTooNew)
			}
		})
	}
}

// TestSignMatchesReference: Sign with one secret gives what the reference
// library's Sign gives, and each verifies the other's output.
func TestSignMatchesReference(t *testing.T) {
	ts := time.Now()
	body := []byte(`{"type":"contact.created","data":{"id":"1f81eb52"}}`)
	for _, secret := range []string{secretA, secretB, secretC} {
		wh, err := standardwebhooks.NewWebhook(secret)
		require.NoError(t, err)
		want, err := wh.Sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", ts, body)
		require.NoError(t, err)
		got, err := webhook.Sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", ts, body, secret)
		require.NoError(t, err)
		require.Equal(t, want, got)

		h := http.Header{}
		h.Set("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")
		h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
		h.Set("webhook-signature", want)
		require.NoError(t, webhook.Verify(body, h, secret), "our verifier accepts the reference signature")
		require.NoError(t, wh.Verify(body, h))
	}
}

// TestV1KnownAnswer pins one v1 signature. The value was computed once with
// the reference library (and Python's hmac module) and is kept here so a
// change in the signed content shows.
func TestV1KnownAnswer(t *testing.T) {
	ts := time.Unix(1674087231, 0)
	body := []byte(`{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}`)
	const want = "v1,Kl4yF5FMmntv280wzeRiyYlxIj3W58L2MFyrNkLQXi4="
	got, err := webhook.Sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", ts, body, secretA)
	require.NoError(t, err)
	require.Equal(t, want, got)
	wh, err := standardwebhooks.NewWebhook(secretA)
	require.NoError(t, err)
	ref, err := wh.Sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", ts, body)
	require.NoError(t, err)
	require.Equal(t, want, ref)
}

// rfc8032Key is TEST 1 of RFC 8032 as a whsk_ seed and a whpk_ key.
func rfc8032Key(t testing.TB) (seedKey, fullKey, publicKey string) {
	t.Helper()
	seed, err := hex.DecodeString(rfc8032Seed)
	require.NoError(t, err)
	pub, err := hex.DecodeString(rfc8032Public)
	require.NoError(t, err)
	return "whsk_" + base64.StdEncoding.EncodeToString(seed),
		"whsk_" + base64.StdEncoding.EncodeToString(append(seed, pub...)),
		"whpk_" + base64.StdEncoding.EncodeToString(pub)
}

// TestV1aKnownAnswer pins one v1a signature made with the RFC 8032 TEST 1
// key over the spec's example content. ed25519 signatures are
// deterministic, so the value never changes; it was computed once, outside
// Go, with Python's cryptography package (Ed25519PrivateKey over the same
// seed and content).
func TestV1aKnownAnswer(t *testing.T) {
	seedKey, fullKey, publicKey := rfc8032Key(t)
	derived, err := webhook.PublicKey(seedKey)
	require.NoError(t, err)
	require.Equal(t, publicKey, derived, "the public key derived from the RFC seed is the RFC's")

	id, ts := "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", time.Unix(1674087231, 0)
	body := []byte(`{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}`)
	const want = "v1a,pbpYBMlty2hExn4zt0UTGb6BaP2Vq5AfyzjB9GGV3x/wCJKd8UjOCf8Qhaji6TKY9C5eNMnlF0GG4udaO6B7Ag=="
	for _, key := range []string{seedKey, fullKey} {
		got, err := webhook.Sign(id, ts, body, key)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}

	// Independently: crypto/ed25519 with the RFC's public key, over the
	// spec's content.
	sig, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(want, "v1a,"))
	require.NoError(t, err)
	pub, _ := hex.DecodeString(rfc8032Public)
	require.True(t, ed25519.Verify(pub, []byte(id+".1674087231."+string(body)), sig))

	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", "1674087231")
	h.Set("webhook-signature", want)
	v, err := webhook.NewVerifier(publicKey)
	require.NoError(t, err)
	v.Now = fixed(ts)
	require.NoError(t, v.Verify(body, h))
}

// TestV1aRoundTrip: deliveries signed with a whsk_ key verify with its
// whpk_ key, with crypto/ed25519 directly, and not with another key.
func TestV1aRoundTrip(t *testing.T) {
	sk, pk, err := webhook.NewSigningKey()
	require.NoError(t, err)
	_, otherPK, err := webhook.NewSigningKey()
	require.NoError(t, err)

	rcv := newReceiver(t, nil)
	d := newDeliverer(t, fixed(clock))
	_, err = deliver(t, d, request(config(t, map[string]any{"url": rcv.URL, "signingKeys": []map[string]any{{"key": sk}}})))
	require.NoError(t, err)
	got := rcv.only(t)

	sigHeader := got.Header.Get("webhook-signature")
	require.True(t, strings.HasPrefix(sigHeader, "v1a,"))
	require.NotContains(t, sigHeader, " ", "one key, one signature")
	sig, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sigHeader, "v1a,"))
	require.NoError(t, err)
	pub, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(pk, "whpk_"))
	require.NoError(t, err)
	content := deliveryID + "." + strconv.FormatInt(clock.Unix(), 10) + "." + string(got.Body)
	require.True(t, ed25519.Verify(pub, []byte(content), sig))

	v, err := webhook.NewVerifier(pk)
	require.NoError(t, err)
	v.Now = fixed(clock)
	require.NoError(t, v.Verify(got.Body, got.Header))

	v, err = webhook.NewVerifier(otherPK, secretA)
	require.NoError(t, err)
	v.Now = fixed(clock)
	err = v.Verify(got.Body, got.Header)
	require.ErrorIs(t, err, webhook.ErrNoMatchingSignature)
	require.ErrorContains(t, err, "1 signature (0 v1, 1 v1a, 0 other) checked against 1 secret and 1 public key")

	// The reference library knows no v1a: it finds nothing to check.
	wh, err := standardwebhooks.NewWebhook(secretA)
	require.NoError(t, err)
	require.ErrorIs(t, wh.VerifyIgnoringTimestamp(got.Body, got.Header), standardwebhooks.ErrNoMatchingSignature)
}

func TestSigningKeyForms(t *testing.T) {
	seedKey, fullKey, publicKey := rfc8032Key(t)
	for _, k := range []string{seedKey, fullKey} {
		pk, err := webhook.PublicKey(k)
		require.NoError(t, err)
		require.Equal(t, publicKey, pk)
	}
	// A 64-byte key whose public half is not its seed's.
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(fullKey, "whsk_"))
	raw[63] ^= 1
	_, err := webhook.PublicKey("whsk_" + base64.StdEncoding.EncodeToString(raw))
	require.ErrorIs(t, err, webhook.ErrInvalidKey)
	require.ErrorContains(t, err, "public half does not match")
}

func TestNewSecretAndKeys(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		s, err := webhook.NewSecret()
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(s, "whsec_"))
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		require.NoError(t, err)
		require.Len(t, raw, 32)
		require.False(t, seen[s])
		seen[s] = true
		_, err = standardwebhooks.NewWebhook(s) // the reference library takes it
		require.NoError(t, err)
		_, err = webhook.NewVerifier(s)
		require.NoError(t, err)
	}

	sk, pk, err := webhook.NewSigningKey()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(sk, "whsk_"))
	require.True(t, strings.HasPrefix(pk, "whpk_"))
	rawSK, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sk, "whsk_"))
	require.NoError(t, err)
	require.Len(t, rawSK, ed25519.PrivateKeySize)
	rawPK, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(pk, "whpk_"))
	require.NoError(t, err)
	require.Equal(t, []byte(ed25519.PrivateKey(rawSK).Public().(ed25519.PublicKey)), rawPK)
	derived, err := webhook.PublicKey(sk)
	require.NoError(t, err)
	require.Equal(t, pk, derived)
}

func TestSignErrors(t *testing.T) {
	_, pk, err := webhook.NewSigningKey()
	require.NoError(t, err)
	ts := time.Unix(1674087231, 0)
	for _, tc := range []struct {
		name, id string
		keys     []string
		want     string
		badKey   bool
	}{
		{name: "no keys", id: "msg_1", want: "no secret or signing key", badKey: true},
		{name: "public key", id: "msg_1", keys: []string{secretA, pk}, want: "key 2: invalid key: a whpk_ public key verifies but cannot sign", badKey: true},
		{name: "unknown", id: "msg_1", keys: []string{"hunter2hunter2"}, want: "key 1: invalid key: want a whsec_ secret or a whsk_ signing key", badKey: true},
		{name: "short secret", id: "msg_1", keys: []string{"whsec_c2VjcmV0"}, want: "secret decodes to 6 bytes, want 24 to 64", badKey: true},
		{name: "dot in id", id: "msg.1", keys: []string{secretA}, want: "message ID has a '.' at byte 3"},
		{name: "space in id", id: "msg 1", keys: []string{secretA}, want: "not printable ASCII"},
		{name: "empty id", id: "", keys: []string{secretA}, want: "message ID is empty"},
		{name: "long id", id: strings.Repeat("a", 256), keys: []string{secretA}, want: "longer than 255"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := webhook.Sign(tc.id, ts, nil, tc.keys...)
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, tc.badKey, errors.Is(err, webhook.ErrInvalidKey))
			require.NotContains(t, err.Error(), "c2VjcmV0")
			require.NotContains(t, err.Error(), "hunter2")
		})
	}

	both, err := webhook.Sign("msg_1", ts, []byte("{}"), secretA, rfc8032SigningKey(t), secretB)
	require.NoError(t, err)
	parts := strings.Split(both, " ")
	require.Len(t, parts, 3)
	require.True(t, strings.HasPrefix(parts[0], "v1,"))
	require.True(t, strings.HasPrefix(parts[1], "v1,"), "secrets first")
	require.True(t, strings.HasPrefix(parts[2], "v1a,"))
}

func rfc8032SigningKey(t testing.TB) string {
	k, _, _ := rfc8032Key(t)
	return k
}
