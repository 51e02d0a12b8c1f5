package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"testing"

	"github.com/outhook/outhook/webhook"
)

// FuzzVerify feeds Verify arbitrary bodies and headers: it never panics,
// every error matches exactly one of the documented sentinels, and a valid
// signature over the fuzzed body (with the fuzzed ID, when Sign accepts it)
// always verifies, v1 and v1a alike. Seeds are under testdata/fuzz/FuzzVerify.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`{"type":"incident.incident.created","timestamp":"2026-01-02T03:00:00Z","data":{}}`),
		deliveryID, strconv.FormatInt(clock.Unix(), 10), "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=")
	f.Add([]byte(nil), "", "", "")
	f.Add([]byte("\x00\xff"), "msg.1", "-1", "v1a, v1,")
	f.Add([]byte("{}"), "msg_1", "99999999999999999999", "v1,==== v1a,AAAA v2,x")

	const secret = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
	_, fullKey, publicKey := rfc8032Key(f)
	v, err := webhook.NewVerifier(secret, publicKey)
	if err != nil {
		f.Fatal(err)
	}
	v.Now = fixed(clock)
	sentinels := []error{webhook.ErrMissingHeaders, webhook.ErrInvalidHeaders, webhook.ErrTimestampTooOld,
		webhook.ErrTimestampTooNew, webhook.ErrNoMatchingSignature}

	f.Fuzz(func(t *testing.T, body []byte, id, ts, sig string) {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		if err := v.Verify(body, h); err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error matches %d sentinels: %v", n, err)
			}
		}

		for _, key := range []string{secret, fullKey} {
			for _, msgID := range []string{deliveryID, id} {
				good, err := webhook.Sign(msgID, clock, body, key)
				if err != nil {
					if msgID == deliveryID {
						t.Fatalf("Sign: %v", err)
					}
					continue // an ID Sign refuses
				}
				h := http.Header{}
				h.Set("webhook-id", msgID)
				h.Set("webhook-timestamp", strconv.FormatInt(clock.Unix(), 10))
				h.Set("webhook-signature", sig+" "+good) // after whatever the fuzzer wrote
				if err := v.Verify(body, h); err != nil && !errors.Is(err, webhook.ErrInvalidHeaders) {
					// Only a fuzzed list longer than MaxSignatures may fail it.
					t.Fatalf("valid signature refused: %v", err)
				}
				h.Set("webhook-signature", good)
				if err := v.Verify(body, h); err != nil {
					t.Fatalf("valid signature refused: %v", err)
				}
			}
		}
	})
}
