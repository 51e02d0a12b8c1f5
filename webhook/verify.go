package webhook

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks headers. http.Header canonicalises them to
// Webhook-Id, Webhook-Timestamp and Webhook-Signature; header names are
// case-insensitive.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// DefaultTolerance is how far a message's timestamp may be from the
// receiver's clock, in either direction, before Verify refuses it: five
// minutes, as the spec's reference libraries use.
const DefaultTolerance = 5 * time.Minute

// MaxSignatures is how many signatures a webhook-signature header may list.
// A sender lists one per active key, so a longer list is refused rather
// than checked: each v1a signature costs an ed25519 verification per key.
const MaxSignatures = 20

// Errors of Verify. Each error Verify returns matches (errors.Is) exactly
// one of them, and its text says what failed.
var (
	// ErrMissingHeaders: webhook-id, webhook-timestamp or webhook-signature
	// is absent or empty.
	ErrMissingHeaders = errors.New("webhook: missing headers")
	// ErrInvalidHeaders: a header is malformed (a timestamp that is not a
	// Unix time in seconds, an ID with a '.', too many signatures).
	ErrInvalidHeaders = errors.New("webhook: invalid headers")
	// ErrTimestampTooOld: the timestamp is more than the tolerance before
	// now (a replay, or a message held up too long).
	ErrTimestampTooOld = errors.New("webhook: timestamp too old")
	// ErrTimestampTooNew: the timestamp is more than the tolerance after
	// now (the sender's clock is ahead, or the message was forged).
	ErrTimestampTooNew = errors.New("webhook: timestamp too new")
	// ErrNoMatchingSignature: no listed signature verifies with any key; the
	// body, ID or timestamp was changed, or the keys are not the sender's.
	ErrNoMatchingSignature = errors.New("webhook: no matching signature")
)

// Verifier checks the Standard Webhooks signature of received messages
// against a trust list of keys: whsec_ secrets (v1 signatures) and whpk_
// public keys (v1a). A message passes when its headers are present and well
// formed, its timestamp is within Tolerance of Now in either direction, and
// any one of its signatures verifies with any one of the keys, so a sender
// that rotates keys (signing with the old and the new one for a while) is
// accepted throughout. Signatures of unknown versions are skipped.
//
// A Verifier is safe for concurrent use once its fields are set.
type Verifier struct {
	// Tolerance is the largest accepted distance between a message's
	// timestamp and Now. Zero (or negative) means DefaultTolerance.
	Tolerance time.Duration
	// Now returns the receiver's time; nil means time.Now. Tests set it.
	Now func() time.Time

	secrets    [][]byte
	publicKeys []ed25519.PublicKey
}

// NewVerifier returns a Verifier that trusts keys: whsec_ secrets and whpk_
// public keys, at least one. A whsk_ signing key is refused (it is the
// sender's private key: give the receiver its public key, see PublicKey).
// Errors match ErrInvalidKey, name the key by its 1-based position and
// never quote it.
func NewVerifier(keys ...string) (*Verifier, error) {
	v := &Verifier{}
	for i, k := range keys {
		var err error
		switch {
		case strings.HasPrefix(k, SecretPrefix):
			var raw []byte
			if raw, err = parseSecret(k); err == nil {
				v.secrets = append(v.secrets, raw)
			}
		case strings.HasPrefix(k, PublicKeyPrefix):
			var pub ed25519.PublicKey
			if pub, err = parsePublicKey(k); err == nil {
				v.publicKeys = append(v.publicKeys, pub)
			}
		case strings.HasPrefix(k, SigningKeyPrefix):
			err = keyErrorf("a %s signing key is the sender's private key; a receiver verifies with its %s public key", SigningKeyPrefix, PublicKeyPrefix)
		default:
			err = keyErrorf("want a %s secret or a %s public key", SecretPrefix, PublicKeyPrefix)
		}
		if err != nil {
			return nil, fmt.Errorf("webhook: verifier: key %d: %w", i+1, err)
		}
	}
	if len(v.secrets)+len(v.publicKeys) == 0 {
		return nil, fmt.Errorf("webhook: verifier: %w", keyErrorf("no secret or public key to verify with"))
	}
	return v, nil
}

// Verify checks a received message: body is the request body exactly as
// received (before any JSON decoding), h its headers. It returns nil when
// the message is authentic and fresh, and otherwise an error matching one
// of ErrMissingHeaders, ErrInvalidHeaders, ErrTimestampTooOld,
// ErrTimestampTooNew and ErrNoMatchingSignature. Secrets are compared in
// constant time.
//
// Verify does not remember IDs: to drop duplicates (a retry of a message
// already processed), keep the webhook-id of processed messages for longer
// than the tolerance.
func (v *Verifier) Verify(body []byte, h http.Header) error {
	id := headerValue(h, HeaderID)
	tsText := headerValue(h, HeaderTimestamp)
	sigText := headerValue(h, HeaderSignature)
	var missing []string
	for _, m := range []struct{ name, value string }{
		{HeaderID, id}, {HeaderTimestamp, tsText}, {HeaderSignature, sigText},
	} {
		if strings.TrimSpace(m.value) == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingHeaders, strings.Join(missing, ", "))
	}
	if err := checkID(id); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidHeaders, HeaderID, err)
	}
	ts, ok := parseTimestamp(tsText)
	if !ok {
		return fmt.Errorf("%w: %s is not a Unix time in whole seconds", ErrInvalidHeaders, HeaderTimestamp)
	}

	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	t, n := time.Unix(ts, 0), now()
	if d := n.Sub(t); d > tol {
		return fmt.Errorf("%w: %s %d is %s before now (tolerance %s)", ErrTimestampTooOld, HeaderTimestamp, ts, d.Truncate(time.Second), tol)
	}
	if d := t.Sub(n); d > tol {
		return fmt.Errorf("%w: %s %d is %s after now (tolerance %s)", ErrTimestampTooNew, HeaderTimestamp, ts, d.Truncate(time.Second), tol)
	}

	sigs := strings.Fields(sigText)
	if len(sigs) > MaxSignatures {
		return fmt.Errorf("%w: %s lists %d signatures, more than %d", ErrInvalidHeaders, HeaderSignature, len(sigs), MaxSignatures)
	}
	content := signedContent(make([]byte, 0, len(id)+22+len(body)), id, ts, body)
	var macs [][]byte // computed on the first v1 signature
	var nv1, nv1a int
	for _, s := range sigs {
		version, encoded, ok := strings.Cut(s, ",")
		if !ok {
			continue
		}
		switch version {
		case versionHMAC:
			nv1++
			sig, err := b64.DecodeString(encoded)
			if err != nil || len(sig) != sha256.Size {
				continue
			}
			if macs == nil {
				macs = make([][]byte, len(v.secrets))
				for i, secret := range v.secrets {
					macs[i] = hmacSignature(secret, content)
				}
			}
			for _, mac := range macs {
				if hmac.Equal(sig, mac) {
					return nil
				}
			}
		case versionEd25519:
			nv1a++
			sig, err := b64.DecodeString(encoded)
			if err != nil || len(sig) != ed25519.SignatureSize {
				continue
			}
			for _, pub := range v.publicKeys {
				if ed25519.Verify(pub, content, sig) {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%w: %s (%d v1, %d v1a, %d other) checked against %s and %s",
		ErrNoMatchingSignature, count(len(sigs), "signature"), nv1, nv1a, len(sigs)-nv1-nv1a,
		count(len(v.secrets), "secret"), count(len(v.publicKeys), "public key"))
}

// Verify checks a received message against keys (whsec_ secrets and
// whpk_ public keys) with the default tolerance: it is
// NewVerifier(keys...) followed by Verifier.Verify. Receivers that verify
// many messages should make one Verifier and keep it.
func Verify(body []byte, h http.Header, keys ...string) error {
	v, err := NewVerifier(keys...)
	if err != nil {
		return err
	}
	return v.Verify(body, h)
}

// headerValue returns the value of a header, also when h was built by hand
// with a key that is not in canonical form ("webhook-id"). Several values
// (a header repeated on the way) are joined with spaces, which is right for
// the signature list and makes any other header malformed.
func headerValue(h http.Header, name string) string {
	vs := h.Values(name)
	if len(vs) == 0 {
		for k, kvs := range h {
			if strings.EqualFold(k, name) {
				vs = append(vs, kvs...)
			}
		}
	}
	switch len(vs) {
	case 0:
		return ""
	case 1:
		return vs[0]
	}
	return strings.Join(vs, " ")
}

// parseTimestamp reads Unix seconds written as the sender writes them:
// decimal digits, no sign, no leading zeros (so that the text signed is the
// text received).
func parseTimestamp(s string) (int64, bool) {
	if s == "" || len(s) > 19 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func count(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}
