// Package httpoutcome turns the answer to one HTTP delivery attempt into the
// outcome the outhook core understands, with the status mapping every HTTP
// deliverer shares (DESIGN.md, after hashicorp/go-retryablehttp's policy):
//
//   - 2xx: success;
//   - 410 Gone: permanent, and the subscription is disabled (outhook.Gone);
//   - 429, 502, 503, 504: retried, honouring Retry-After (delta seconds or
//     an HTTP date);
//   - other 5xx: retried (501 Not Implemented excepted: permanent);
//   - 3xx: permanent (redirects are never followed);
//   - other 4xx: permanent, unless the deliverer lists them as retryable.
//
// Network errors are retried, except those package safehttp reports as
// permanent: a blocked address, a certificate that will not verify.
package httpoutcome

import (
	"errors"
	"net/http"
	"slices"
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
}

// FromResponse classifies a response: a nil error for success, otherwise an
// error wrapped as outhook expects (Permanent, Gone, RetryAfter or plain
// retryable). The result carries the status code and body excerpt in every
// case, for the attempt record.
func FromResponse(req *http.Request, resp *safehttp.Response, p Policy) (outhook.DeliveryResult, error) {
	res := outhook.DeliveryResult{StatusCode: resp.StatusCode, Response: string(resp.Body)}
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return res, nil
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
