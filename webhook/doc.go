// Package webhook is the outhook deliverer for signed webhooks in the
// Standard Webhooks format (https://www.standardwebhooks.com/, spec:
// https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md),
// and the signing and verification helpers its receivers need.
//
// Register it with a client and subscribe with its ID, "webhook":
//
//	dl, err := webhook.New(nil)
//	client, err := outhook.NewClient(&outhook.Config{Deliverers: []outhook.Deliverer{dl}, ...})
//	secret, err := webhook.NewSecret() // "whsec_...", give it to the receiver
//	sub, err := client.CreateSubscription(ctx, outhook.Subscription{
//		Events: []string{"incident.**"}, DelivererID: webhook.ID,
//		Config: json.RawMessage(`{"url": "https://example.com/hooks", "secrets": [{"secret": "whsec_..."}]}`),
//	})
//
// # Configuration
//
// A subscription's config (see Config and ConfigSchema) holds the endpoint
// url, the signing secrets and keys, and optionally the method (POST, PUT or
// PATCH), the body shape (envelope or raw), extra headers, an Authorization
// (bearer token or basic) and 4xx statuses to retry. At least one secret or
// signing key must be active. A secret or key stops signing at its
// notAfter: to rotate a secret with a grace period, add the new one and give
// the old one a notAfter; both sign until then, and receivers that know
// either one accept the messages.
//
// # Wire format
//
// Each attempt is one request:
//
//	POST <url>
//	Content-Type: application/json
//	User-Agent: outhook/<safehttp.Version>
//	Webhook-Id: <delivery ID, the same on every retry: receivers deduplicate on it>
//	Webhook-Timestamp: <Unix seconds of this attempt>
//	Webhook-Signature: v1,<base64> v1,<base64> v1a,<base64>
//
//	{"type":"incident.incident.created","timestamp":"2026-01-02T03:04:05Z","data":{...payload...}}
//
// The body is the envelope above (type = event ID, timestamp = when the
// event occurred, RFC 3339 in UTC, data = the payload after the event's
// transform) or, with "body": "raw", the payload alone. The signed content
// is "<webhook-id>.<webhook-timestamp>.<body>", byte for byte as sent; the
// signature header lists "v1," and the base64 of its HMAC-SHA256 for each
// active whsec_ secret (the key is the base64-decoded part after the
// prefix), then "v1a," and the base64 of its ed25519 signature for each
// active whsk_ signing key, separated by spaces.
//
// Keys are serialised as the spec says: "whsec_" + base64 of 24 to 64 random
// bytes for secrets, "whsk_" + base64 of an ed25519 private key (the 32-byte
// seed or the 64-byte seed and public key; NewSigningKey makes the latter),
// "whpk_" + base64 of the 32-byte public key. Base64 is the standard
// alphabet with padding.
//
// # Outcomes
//
// The status mapping is the spec's ("Delivery success and failure") and
// outhook's (package internal/httpoutcome):
//
//   - 2xx: delivered;
//   - 410 Gone: failed for good and the subscription is disabled;
//   - 429, 502, 503, 504: retried, no sooner than Retry-After (seconds or
//     an HTTP date) when the receiver sends one;
//   - other 5xx: retried; 501 Not Implemented fails for good;
//   - 3xx: failed for good (redirects are never followed: fix the URL);
//     of class blocked when the Location is an address the SSRF guard
//     refuses;
//   - a body cut after the status: the status decides (a 2xx is
//     delivered);
//   - other 4xx: failed for good, unless listed in retryStatuses;
//   - network errors and timeouts: retried; an address the SSRF guard of
//     package safehttp refuses, or a certificate that does not verify,
//     fails for good.
//
// The first 16 KiB of the response body are kept as the attempt's
// Response, with the credentials the deliverer sent (bearer token, basic
// credentials, extra header values of 6 bytes or more) replaced by
// "[redacted]" in case the receiver echoes them. Errors never contain a
// secret, key, token or password; URLs in them have query values redacted.
//
// # Limits
//
// A body larger than Options.MaxBody (1 MiB by default) fails for good, as
// does a payload that is not valid JSON (what json.Valid accepts); the spec
// recommends payloads under 20 KB. A config has at most 10 secrets,
// 10 signing keys and 32 extra headers.
//
// # Receivers
//
// Verify and Verifier check a received message: headers present, timestamp
// within five minutes of now in either direction (Verifier.Tolerance), and
// any one signature matching any trusted key (whsec_ secrets and whpk_
// public keys), compared in constant time. Any Standard Webhooks library
// verifies the v1 signatures; v1a needs this package or another ed25519
// implementation of the spec. Sign computes a signature header, NewSecret
// and NewSigningKey make keys, PublicKey derives a whpk_ key from a whsk_
// one.
//
//	v, err := webhook.NewVerifier(os.Getenv("WEBHOOK_SECRET"))
//	http.HandleFunc("/hooks", func(w http.ResponseWriter, r *http.Request) {
//		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
//		if err != nil { ... }
//		if err := v.Verify(body, r.Header); err != nil {
//			http.Error(w, "bad signature", http.StatusUnauthorized)
//			return
//		}
//		// Deduplicate on r.Header.Get("webhook-id"), then handle body.
//	})
package webhook
