// Package httpoutcome turns the answer to one HTTP delivery attempt into the
// outcome the outhook core understands, with the status mapping every HTTP
// deliverer shares (DESIGN.md, after hashicorp/go-retryablehttp's policy):
//
//   - 2xx: success;
//   - 410 Gone: permanent, and the subscription is disabled (outhook.Gone);
//   - 429, 502, 503, 504: retried, honouring Retry-After (delta seconds or
//     an HTTP date);
//   - other 5xx: retried (501 Not Implemented excepted: permanent);
//   - 3xx: permanent (redirects are never followed), of class blocked when
//     the Location is an address the SSRF guard refuses;
//   - other 4xx: permanent, unless the deliverer lists them as retryable.
//
// A response whose body was cut after its status arrived is classified by
// its status (safehttp.Response.BodyErr). Network errors are retried, except those package safehttp reports as
// permanent: a blocked address, a certificate that will not verify.
package httpoutcome

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/safehttp"
)

// Policy adjusts the shared mapping for one destination.
type Policy struct {
	// Retry lists 4xx statuses to retry instead of failing for good.
	Retry []int
	// Gone lists statuses, besides 410, that mean the destination is gone
	// (Slack answers 404 for a deleted channel, for example).
	Gone []int
	// Now returns the time for Retry-After dates; nil means time.Now.
	Now func() time.Time
	// Secrets are values the deliverer sends that must not reach the
	// attempt record (tokens, signing secrets, credentials, secret parts of
	// URLs): they are replaced with "[redacted]" wherever they appear in
	// the recorded request and response headers. Values shorter than
	// MinSecret are ignored.
	Secrets []string
}

// MinSecret is the length below which a secret is not redacted from header
// values: replacing every "a" would garble them and protect nothing.
const MinSecret = 6

// Request returns the result of an attempt that sent req and got no
// answer (a network error): its request headers, for the attempt record.
func Request(req *http.Request, p Policy) outhook.DeliveryResult {
	return outhook.DeliveryResult{RequestHeaders: Headers(req.Header, p.Secrets)}
}

// Headers returns a copy of h for an attempt record, with every secret
// replaced by "[redacted]" wherever it appears in a value, and every value
// that is an absolute http(s) URL redacted as safehttp.Redact does (query
// values, userinfo, the secret path of known webhook hosts). Names are kept
// as they are and values in their order. The client then redacts
// credential headers by name, drops Set-Cookie from responses and bounds
// the record (see outhook.Attempt.RequestHeaders). A nil h gives nil.
func Headers(h http.Header, secrets []string) map[string][]string {
	if h == nil {
		return nil
	}
	out := make(map[string][]string, len(h))
	for name, vs := range h {
		c := make([]string, len(vs))
		for i, v := range vs {
			c[i] = scrub(v, secrets)
		}
		out[name] = c
	}
	return out
}

// scrub redacts the secrets in one header value.
func scrub(v string, secrets []string) string {
	for _, s := range secrets {
		if len(s) >= MinSecret && strings.Contains(v, s) {
			v = strings.ReplaceAll(v, s, outhook.Redacted)
		}
	}
	if t := strings.TrimSpace(v); len(t) > 8 && (strings.HasPrefix(strings.ToLower(t), "http://") || strings.HasPrefix(strings.ToLower(t), "https://")) {
		v = safehttp.Redact(t)
	}
	return v
}

// FromResponse classifies a response: a nil error for success, otherwise an
// error wrapped as outhook expects (Permanent, Gone, RetryAfter or plain
// retryable). The result carries the status code and body excerpt in every
// case, for the attempt record, with the request's and the response's
// headers (see Headers; p.Secrets are redacted from them).
func FromResponse(req *http.Request, resp *safehttp.Response, p Policy) (outhook.DeliveryResult, error) {
	res := outhook.DeliveryResult{StatusCode: resp.StatusCode, Response: string(resp.Body),
		RequestHeaders: Headers(req.Header, p.Secrets), ResponseHeaders: Headers(resp.Header, p.Secrets)}
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		// Accepted, even if the body was then cut (resp.BodyErr): the
		// receiver has the event, and sending it again would duplicate it.
		return res, nil
	}
	if resp.RedirectBlocked != nil {
		// A redirect toward an internal address: never followed, and
		// recorded as blocked rather than as a plain status.
		return res, outhook.Permanent(resp.RedirectBlocked)
	}
	err := error(safehttp.StatusError(req, resp))
	switch {
	case code == http.StatusGone || slices.Contains(p.Gone, code):
		return res, outhook.Gone(err)
	case code == http.StatusTooManyRequests || code == http.StatusBadGateway ||
		code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		now := time.Now
		if p.Now != nil {
			now = p.Now
		}
		if d, ok := safehttp.RetryAfter(resp.Header.Get("Retry-After"), now()); ok && d > 0 {
			return res, outhook.RetryAfter(err, d)
		}
		return res, err
	case code == http.StatusNotImplemented:
		return res, outhook.Permanent(err)
	case code >= 500:
		return res, err
	case code >= 400 && slices.Contains(p.Retry, code):
		return res, err
	default: // 1xx, 3xx, 4xx
		return res, outhook.Permanent(err)
	}
}

// FromError classifies an error from safehttp.Client.Do: permanent when
// safehttp says retrying cannot help, retryable otherwise.
func FromError(err error) error {
	if e, ok := errors.AsType[*safehttp.Error](err); ok && e.Permanent() {
		return outhook.Permanent(err)
	}
	return err
}
