package webhook

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Key prefixes of the Standard Webhooks key serialisation
// (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
// "Signature scheme"): the prefix says which scheme a key is for, and the
// rest is standard base64 (with padding).
const (
	// SecretPrefix starts a symmetric signing secret (v1, HMAC-SHA256).
	SecretPrefix = "whsec_"
	// SigningKeyPrefix starts an ed25519 private key (v1a), used to sign.
	SigningKeyPrefix = "whsk_"
	// PublicKeyPrefix starts an ed25519 public key (v1a), used to verify.
	PublicKeyPrefix = "whpk_"
)

// Sizes of symmetric secrets, in bytes after base64 decoding. The spec asks
// for at least 24 random bytes (192 bits) and at most 512 bits.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
	// NewSecretBytes is how many random bytes NewSecret draws.
	NewSecretBytes = 32
)

// Signature version identifiers in the webhook-signature header.
const (
	versionHMAC    = "v1"
	versionEd25519 = "v1a"
)

// ErrInvalidKey is matched (errors.Is) by every error about a malformed
// secret or key. The errors never contain the key itself.
var ErrInvalidKey = errors.New("webhook: invalid key")

// keyError describes why a key was refused, without quoting it.
type keyError struct{ msg string }

func (e *keyError) Error() string        { return "invalid key: " + e.msg }
func (e *keyError) Is(target error) bool { return target == ErrInvalidKey }

func keyErrorf(format string, args ...any) error {
	return &keyError{msg: fmt.Sprintf(format, args...)}
}

// b64 is the encoding of every key and signature: standard alphabet, with
// padding, strict. Sender and receiver libraries use exactly this one
// (the reference Go library decodes secrets with base64.StdEncoding), so a
// key we accept is a key they accept.
var b64 = base64.StdEncoding.Strict()

// decodeKey decodes the base64 part of a prefixed key.
func decodeKey(key, prefix, what string) ([]byte, error) {
	raw, err := b64.DecodeString(strings.TrimPrefix(key, prefix))
	if err != nil {
		// The base64 error quotes an offset, not the input; still, say it
		// in our own words.
		return nil, keyErrorf("%s is not valid base64 after %q (standard alphabet with padding)", what, prefix)
	}
	return raw, nil
}

// parseSecret decodes a whsec_ secret.
func parseSecret(s string) ([]byte, error) {
	if !strings.HasPrefix(s, SecretPrefix) {
		return nil, keyErrorf("a secret must start with %q", SecretPrefix)
	}
	raw, err := decodeKey(s, SecretPrefix, "secret")
	if err != nil {
		return nil, err
	}
	if len(raw) < MinSecretBytes || len(raw) > MaxSecretBytes {
		return nil, keyErrorf("secret decodes to %d bytes, want %d to %d", len(raw), MinSecretBytes, MaxSecretBytes)
	}
	return raw, nil
}

// parseSigningKey decodes a whsk_ ed25519 private key: either the 32-byte
// seed of RFC 8032 or the 64-byte seed-and-public-key form of libsodium and
// crypto/ed25519, whose public half must match the seed.
func parseSigningKey(s string) (ed25519.PrivateKey, error) {
	if !strings.HasPrefix(s, SigningKeyPrefix) {
		return nil, keyErrorf("a signing key must start with %q", SigningKeyPrefix)
	}
	raw, err := decodeKey(s, SigningKeyPrefix, "signing key")
	if err != nil {
		return nil, err
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !bytes.Equal(priv[ed25519.SeedSize:], raw[ed25519.SeedSize:]) {
			return nil, keyErrorf("signing key's public half does not match its seed")
		}
		return priv, nil
	}
	return nil, keyErrorf("signing key decodes to %d bytes, want %d (seed) or %d (seed and public key)",
		len(raw), ed25519.SeedSize, ed25519.PrivateKeySize)
}

// parsePublicKey decodes a whpk_ ed25519 public key.
func parsePublicKey(s string) (ed25519.PublicKey, error) {
	if !strings.HasPrefix(s, PublicKeyPrefix) {
		return nil, keyErrorf("a public key must start with %q", PublicKeyPrefix)
	}
	raw, err := decodeKey(s, PublicKeyPrefix, "public key")
	if err != nil {
		return nil, err
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, keyErrorf("public key decodes to %d bytes, want %d", len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// NewSecret returns a new symmetric signing secret: "whsec_" and the base64
// of 32 random bytes. Give it to the receiver and put it in a
// subscription's secrets.
func NewSecret() (string, error) {
	raw := make([]byte, NewSecretBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("webhook: new secret: %w", err)
	}
	return SecretPrefix + b64.EncodeToString(raw), nil
}

// NewSigningKey returns a new ed25519 key pair for v1a signatures: the
// private key ("whsk_" and the base64 of the 64-byte seed-and-public-key
// form, as crypto/ed25519 and libsodium hold it) for a subscription's
// signingKeys, and the public key ("whpk_" and the base64 of its 32 bytes)
// for the receiver.
func NewSigningKey() (secretKey, publicKey string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("webhook: new signing key: %w", err)
	}
	return SigningKeyPrefix + b64.EncodeToString(priv), PublicKeyPrefix + b64.EncodeToString(pub), nil
}

// PublicKey returns the whpk_ public key of a whsk_ signing key.
func PublicKey(signingKey string) (string, error) {
	priv, err := parseSigningKey(signingKey)
	if err != nil {
		return "", fmt.Errorf("webhook: public key: %w", err)
	}
	return PublicKeyPrefix + b64.EncodeToString(priv.Public().(ed25519.PublicKey)), nil
}

// signer holds the parsed keys that sign one delivery.
type signer struct {
	secrets []*hmacKey           // v1
	keys    []ed25519.PrivateKey // v1a
}

// hmacKey is a v1 secret, with a pool of HMAC-SHA256 states keyed with
// it when its signer is kept. A prepared config keeps its signer for all
// its deliveries, so a delivery resets a pooled state instead of keying a
// new one with hmac.New (which hashes the padded key twice and allocates
// two SHA-256 states).
type hmacKey struct {
	secret []byte
	pool   *sync.Pool // of *hmacState; nil for a one-off signer (Sign)
}

// hmacState is a keyed HMAC and room for its sum, so that Sum does not
// allocate.
type hmacState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// newSigner parses keys: whsec_ secrets and whsk_ signing keys, in any
// order. Errors name the key by its 1-based position. A pooled signer keeps
// HMAC states for reuse: for a signer that signs many messages.
func newSigner(keys []string, pooled bool) (*signer, error) {
	s := &signer{}
	for i, k := range keys {
		switch {
		case strings.HasPrefix(k, SecretPrefix):
			raw, err := parseSecret(k)
			if err != nil {
				return nil, fmt.Errorf("key %d: %w", i+1, err)
			}
			k := &hmacKey{secret: raw}
			if pooled {
				k.pool = new(sync.Pool)
			}
			s.secrets = append(s.secrets, k)
		case strings.HasPrefix(k, SigningKeyPrefix):
			priv, err := parseSigningKey(k)
			if err != nil {
				return nil, fmt.Errorf("key %d: %w", i+1, err)
			}
			s.keys = append(s.keys, priv)
		case strings.HasPrefix(k, PublicKeyPrefix):
			return nil, fmt.Errorf("key %d: %w", i+1, keyErrorf("a %s public key verifies but cannot sign; sign with its %s private key", PublicKeyPrefix, SigningKeyPrefix))
		default:
			return nil, fmt.Errorf("key %d: %w", i+1, keyErrorf("want a %s secret or a %s signing key", SecretPrefix, SigningKeyPrefix))
		}
	}
	if len(s.secrets)+len(s.keys) == 0 {
		return nil, keyErrorf("no secret or signing key to sign with")
	}
	return s, nil
}

// signedContent returns "<id>.<timestamp>.<body>", the content every
// signature covers, appended to dst.
func signedContent(dst []byte, id string, ts int64, body []byte) []byte {
	dst = append(dst, id...)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, '.')
	return append(dst, body...)
}

// content is the signed content "<id>.<timestamp>.<body>" in pieces, so
// that a large body is signed where it lies rather than copied after the
// prefix: the concatenation of prefix and parts, in order.
type content struct {
	// prefix is "<id>.<timestamp>.", followed by the body when the body
	// was built right after it in one buffer (parts are then empty).
	prefix []byte
	// parts are the rest of the body: the payload, or an envelope's
	// head, payload and tail.
	parts [3][]byte
}

// bytes returns the content in one slice, copying only when it is in
// pieces.
func (c *content) bytes() []byte {
	if len(c.parts[0])+len(c.parts[1])+len(c.parts[2]) == 0 {
		return c.prefix
	}
	out := make([]byte, 0, len(c.prefix)+len(c.parts[0])+len(c.parts[1])+len(c.parts[2]))
	out = append(out, c.prefix...)
	for _, p := range c.parts {
		out = append(out, p...)
	}
	return out
}

// sum appends the base64 of the HMAC-SHA256 of c with k to dst.
func (k *hmacKey) sum(dst []byte, c *content) []byte {
	var st *hmacState
	if k.pool != nil {
		st, _ = k.pool.Get().(*hmacState)
	}
	if st == nil {
		st = &hmacState{h: hmac.New(sha256.New, k.secret)}
	} else {
		st.h.Reset()
	}
	st.h.Write(c.prefix)
	for _, p := range c.parts {
		if len(p) > 0 {
			st.h.Write(p)
		}
	}
	dst = b64.AppendEncode(dst, st.h.Sum(st.sum[:0]))
	if k.pool != nil {
		k.pool.Put(st)
	}
	return dst
}

// hmacSignature is the raw v1 signature of content with secret, computed
// the plain way (Verifier uses it).
func hmacSignature(secret, content []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(content)
	return h.Sum(nil)
}

// appendHeader appends the webhook-signature header value for c to dst:
// one "v1,<base64>" per secret, then one "v1a,<base64>" per signing key,
// separated by spaces.
func (s *signer) appendHeader(dst []byte, c *content) []byte {
	start := len(dst)
	for _, k := range s.secrets {
		if len(dst) > start {
			dst = append(dst, ' ')
		}
		dst = append(dst, versionHMAC+","...)
		dst = k.sum(dst, c)
	}
	if len(s.keys) > 0 {
		// ed25519 hashes the message twice, so it needs it whole.
		msg := c.bytes()
		for _, key := range s.keys {
			if len(dst) > start {
				dst = append(dst, ' ')
			}
			dst = append(dst, versionEd25519+","...)
			dst = b64.AppendEncode(dst, ed25519.Sign(key, msg))
		}
	}
	return dst
}

// checkID refuses message IDs that would make the signed content
// ambiguous or cannot travel in a header: the spec asks that IDs hold no
// '.', and IDs must be printable ASCII without spaces.
func checkID(id string) error {
	if id == "" {
		return errors.New("message ID is empty")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("message ID is longer than %d bytes", maxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c == '.' {
			return fmt.Errorf("message ID has a '.' at byte %d (it would make the signed content ambiguous)", i)
		}
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("message ID has a byte that is not printable ASCII at byte %d", i)
		}
	}
	return nil
}

// maxIDLen bounds message IDs.
const maxIDLen = 255

// Sign returns the webhook-signature header value for a message with the
// given ID, timestamp (whole seconds are signed) and body, signed with each
// key: "v1,<base64 HMAC-SHA256>" for a whsec_ secret, "v1a,<base64
// ed25519>" for a whsk_ signing key, separated by spaces, secrets first.
// The signed content is "<id>.<unix seconds>.<body>". IDs with a '.' or
// with bytes other than printable ASCII are refused, as are malformed keys
// (ErrInvalidKey; the error never quotes the key).
func Sign(id string, ts time.Time, body []byte, keys ...string) (string, error) {
	if err := checkID(id); err != nil {
		return "", fmt.Errorf("webhook: sign: %w", err)
	}
	s, err := newSigner(keys, false)
	if err != nil {
		return "", fmt.Errorf("webhook: sign: %w", err)
	}
	c := content{prefix: signedContent(make([]byte, 0, len(id)+22), id, ts.Unix(), nil)}
	c.parts[0] = body
	n := len(s.secrets)*(len(versionHMAC)+2+b64.EncodedLen(sha256.Size)) +
		len(s.keys)*(len(versionEd25519)+2+b64.EncodedLen(ed25519.SignatureSize))
	return string(s.appendHeader(make([]byte, 0, n), &c)), nil
}
