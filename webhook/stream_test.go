package webhook_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outhook/outhook/webhook"
	"github.com/stretchr/testify/require"
)

// plainSignature is the webhook-signature header computed the
// straightforward way: the signed content concatenated into one buffer,
// a fresh hmac.New per secret, ed25519.Sign per key.
func plainSignature(t testing.TB, id string, ts int64, body []byte, secrets []string, keys []string) string {
	t.Helper()
	content := []byte(id + "." + strconv.FormatInt(ts, 10) + "." + string(body))
	var sigs []string
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		require.NoError(t, err)
		mac := hmac.New(sha256.New, key)
		mac.Write(content)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	for _, k := range keys {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(k, "whsk_"))
		require.NoError(t, err)
		priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		sigs = append(sigs, "v1a,"+base64.StdEncoding.EncodeToString(ed25519.Sign(priv, content)))
	}
	return strings.Join(sigs, " ")
}

// TestStreamedSigningMatchesPlain: the deliverer signs the body in pieces
// where it lies (a raw payload, an envelope built after the signed prefix,
// or a large envelope's head, payload and tail), with HMAC states reused
// from a pool. Each signature must equal the one computed over the
// concatenated content, for payloads on either side of the size where the
// layout changes, for each secret length, with and without v1a keys, and
// on repeated deliveries (a reused state must be reset).
func TestStreamedSigningMatchesPlain(t *testing.T) {
	_, fullKey, _ := rfc8032Key(t)
	sk, _, err := webhook.NewSigningKey()
	require.NoError(t, err)
	rcv := newReceiver(t, nil)
	d, err := webhook.New(&webhook.Options{HTTP: loopbackClient(t), Now: fixed(clock), MaxBody: 4 << 20})
	require.NoError(t, err)

	keySets := []struct {
		name    string
		secrets []string
		keys    []string
	}{
		{"v1 32-byte secret", []string{secretA}, nil},
		{"v1 24 and 64-byte secrets", []string{secretB, secretC}, nil},
		{"v1a only", nil, []string{fullKey}},
		{"v1 and v1a", []string{secretC, secretA}, []string{fullKey, sk}},
	}
	sizes := []int{0, 1, 300, 10 << 10, 32<<10 - 40, 32 << 10, 32<<10 + 1, 100 << 10, 1 << 20}
	for _, ks := range keySets {
		for _, mode := range []string{"envelope", "raw"} {
			var secrets []map[string]any
			for _, s := range ks.secrets {
				secrets = append(secrets, map[string]any{"secret": s})
			}
			var keys []map[string]any
			for _, k := range ks.keys {
				keys = append(keys, map[string]any{"key": k})
			}
			cfg := config(t, map[string]any{"url": rcv.URL, "body": mode, "secrets": secrets, "signingKeys": keys})
			for _, size := range sizes {
				req := request(cfg)
				if size > 0 {
					req.Payload = json.RawMessage(`{"pad":"` + strings.Repeat("<&x>", size/4) + `"}`)
				} else {
					req.Payload = nil
				}
				for range 2 { // the second time with pooled HMAC states
					before := len(rcv.requests())
					_, err := deliver(t, d, req)
					require.NoError(t, err, "%s %s %d", ks.name, mode, size)
					got := rcv.requests()[before]
					want := plainSignature(t, deliveryID, clock.Unix(), got.Body, ks.secrets, ks.keys)
					require.Equal(t, want, got.Header.Get("webhook-signature"), "%s %s %d", ks.name, mode, size)
					if mode == "raw" && size > 0 {
						require.Equal(t, string(req.Payload), string(got.Body))
					}
					if mode == "envelope" {
						require.Equal(t, `{"type":"incident.incident.created","timestamp":"2026-01-02T03:00:00.123Z","data":`+
							strings.TrimSpace(string(orNull(req.Payload)))+`}`, string(got.Body))
					}
					require.Equal(t, strconv.Itoa(len(got.Body)), got.Header.Get("Content-Length"))
				}
			}
		}
	}
}

func orNull(p json.RawMessage) json.RawMessage {
	if len(p) == 0 {
		return json.RawMessage("null")
	}
	return p
}

// TestSignMatchesPlain: Sign, which signs through the same pieces, equals
// the straightforward signature.
func TestSignMatchesPlain(t *testing.T) {
	_, fullKey, _ := rfc8032Key(t)
	for _, size := range []int{0, 300, 10 << 10, 100 << 10} {
		body := []byte(strings.Repeat("b", size))
		for _, keys := range [][]string{{secretA}, {secretB, secretC}, {fullKey}, {secretA, fullKey}} {
			var secrets, signing []string
			for _, k := range keys {
				if strings.HasPrefix(k, "whsec_") {
					secrets = append(secrets, k)
				} else {
					signing = append(signing, k)
				}
			}
			got, err := webhook.Sign(deliveryID, clock, body, keys...)
			require.NoError(t, err)
			require.Equal(t, plainSignature(t, deliveryID, clock.Unix(), body, secrets, signing), got, "%d %v", size, len(keys))
		}
	}
}

// TestConcurrentSigning: deliveries of one config from many goroutines
// share its pooled HMAC states; every signature still matches its body.
func TestConcurrentSigning(t *testing.T) {
	rcv := newReceiver(t, nil)
	d := newDeliverer(t, fixed(clock))
	cfg := config(t, map[string]any{"url": rcv.URL, "secrets": []map[string]any{{"secret": secretA}, {"secret": secretC}}})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				req := request(cfg)
				req.Payload = json.RawMessage(`{"g":` + strconv.Itoa(g) + `,"i":` + strconv.Itoa(i) + `,"pad":"` + strings.Repeat("p", (g*20+i)*400) + `"}`)
				req.OccurredAt = occurred.Add(time.Duration(g) * time.Second)
				if _, err := deliver(t, d, req); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	reqs := rcv.requests()
	require.Len(t, reqs, 160)
	for _, r := range reqs {
		require.Equal(t, plainSignature(t, deliveryID, clock.Unix(), r.Body, []string{secretA, secretC}, nil), r.Header.Get("webhook-signature"))
	}
}
