package adminhttp

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/outhook/outhook"
)

// Secrets never leave the handler. Subscriptions come from the client with
// the secrets of their config masked (outhook.SecretMask). On top of that,
// every text the handler sends that a deliverer or the client wrote (attempt
// errors and responses, a delivery's last error, a subscription's disabled
// reason, error details) has the secret values of the subscription it is
// about replaced by SecretMask, in case a deliverer quotes one. The handler
// finds those values by comparing the stored config (Client.Store) with the
// masked one: a value masked in the one is a secret in the other.

// storedSecrets returns the secret values of a subscription's config. It
// returns nil when the subscription is gone or cannot be read.
func (h *Handler) storedSecrets(ctx context.Context, subID string) []string {
	raw, err := h.client.Store().GetSubscription(ctx, subID)
	if err != nil {
		return nil
	}
	masked, err := h.client.Subscription(ctx, subID)
	if err != nil {
		return nil
	}
	return maskedValues(raw.Config, masked.Config)
}

// maskedValues returns the values of raw at the places where masked holds
// SecretMask.
func maskedValues(raw, masked json.RawMessage) []string {
	if len(raw) == 0 || !bytes.Contains(masked, []byte(outhook.SecretMask)) && !bytes.Contains(masked, []byte(url.PathEscape(outhook.SecretMask))) {
		return nil
	}
	var r, m any
	if err := json.Unmarshal(masked, &m); err != nil {
		return nil
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		// The whole config was masked because it is not JSON.
		return []string{string(raw)}
	}
	var out []string
	var walk func(r, m any)
	walk = func(r, m any) {
		switch m := m.(type) {
		case string:
			if m == outhook.SecretMask {
				out = append(out, leafStrings(r)...)
			} else if rs, ok := r.(string); ok && rs != m {
				// A URL shown with its credentials masked
				// (outhook.SecretURLKeyword).
				out = append(out, urlSecrets(rs)...)
			}
		case map[string]any:
			rm, _ := r.(map[string]any)
			for k, v := range m {
				walk(rm[k], v)
			}
		case []any:
			ra, _ := r.([]any)
			for i, v := range m {
				if i < len(ra) {
					walk(ra[i], v)
				}
			}
		}
	}
	walk(r, m)
	return out
}

// urlSecrets returns the parts of a URL that outhook masks: its userinfo
// password and its query values, raw and unescaped.
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw}
	}
	var out []string
	if pw, ok := u.User.Password(); ok && pw != "" {
		out = append(out, pw)
	}
	for _, pair := range strings.Split(u.RawQuery, "&") {
		if _, v, ok := strings.Cut(pair, "="); ok && v != "" {
			out = append(out, v)
			if uv, err := url.QueryUnescape(v); err == nil && uv != v {
				out = append(out, uv)
			}
		}
	}
	return out
}

// configStrings returns every string in a config: the values a request
// sent, any of which may be a secret.
func configStrings(config json.RawMessage) []string {
	if len(config) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(config, &v); err != nil {
		return []string{string(config)}
	}
	return leafStrings(v)
}

func leafStrings(v any) []string {
	switch v := v.(type) {
	case string:
		if v == "" || v == outhook.SecretMask {
			return nil
		}
		return []string{v}
	case map[string]any:
		var out []string
		for _, el := range v {
			out = append(out, leafStrings(el)...)
		}
		return out
	case []any:
		var out []string
		for _, el := range v {
			out = append(out, leafStrings(el)...)
		}
		return out
	}
	return nil
}

// shortSecret is the length under which a secret is replaced only where it
// stands as a word of its own, so that a config value such as "on" does not
// blank out every "on" of a message.
const shortSecret = 6

// scrub returns s with every secret replaced by outhook.SecretMask, the
// longest secrets first.
func scrub(s string, secrets []string) string {
	if len(secrets) == 0 || s == "" {
		return s
	}
	sorted := slices.Clone(secrets)
	slices.SortFunc(sorted, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, sec := range sorted {
		if sec == "" || !strings.Contains(s, sec) {
			continue
		}
		if len(sec) >= shortSecret {
			s = strings.ReplaceAll(s, sec, outhook.SecretMask)
			continue
		}
		s = replaceWords(s, sec)
	}
	return s
}

// replaceWords replaces the occurrences of sec in s that are not part of a
// longer run of letters and digits.
func replaceWords(s, sec string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, sec)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		before, _ := utf8.DecodeLastRuneInString(s[:i])
		after, _ := utf8.DecodeRuneInString(s[i+len(sec):])
		b.WriteString(s[:i])
		if i > 0 && isWordRune(before) || i+len(sec) < len(s) && isWordRune(after) {
			b.WriteString(sec)
		} else {
			b.WriteString(outhook.SecretMask)
		}
		s = s[i+len(sec):]
	}
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// scrubAttempt removes secrets from the texts of an attempt.
func scrubAttempt(a *outhook.Attempt, secrets []string) {
	a.Error = scrub(a.Error, secrets)
	a.Response = scrub(a.Response, secrets)
	a.ExternalID = scrub(a.ExternalID, secrets)
	a.RequestHeaders = scrubHeaders(a.RequestHeaders, secrets)
	a.ResponseHeaders = scrubHeaders(a.ResponseHeaders, secrets)
}

// scrubHeaders returns a copy of h with secrets removed from its values
// (the core has already redacted the headers it knows to carry secrets);
// h itself, which the store may share, is left as it is.
func scrubHeaders(h map[string][]string, secrets []string) map[string][]string {
	if h == nil || len(secrets) == 0 {
		return h
	}
	out := make(map[string][]string, len(h))
	for k, vs := range h {
		c := make([]string, len(vs))
		for i, v := range vs {
			c[i] = scrub(v, secrets)
		}
		out[k] = c
	}
	return out
}

// scrubDelivery removes secrets from the texts of a delivery and its
// attempts. The payload is the application's event, not the subscription's
// config, and is left as it is.
func scrubDelivery(d *outhook.Delivery, secrets []string) {
	if len(secrets) == 0 {
		return
	}
	d.LastError = scrub(d.LastError, secrets)
	d.ExternalID = scrub(d.ExternalID, secrets)
	for i := range d.Attempts {
		scrubAttempt(&d.Attempts[i], secrets)
	}
}
