package soaktest

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest/faultserver"
)

// metadataURL is the cloud metadata address the redirects point at: an
// address the SSRF guard refuses.
const metadataURL = "http://169.254.169.254/latest/meta-data"

// Retry-After waits the faults ask for. The seconds form asks for
// MaxRetryAfter exactly; the date form for more, which the client caps at
// MaxRetryAfter.
const (
	retryAfterSeconds = time.Second
	retryAfterDate    = 3 * time.Second
)

// The faults of the mixes. Every one but Hang and Drop sends its status
// line and headers at once; Trickle, Reset and LargeBody then misbehave in
// the body.
var (
	fOK        = faultserver.OK()
	fAccepted  = faultserver.Status(http.StatusAccepted)
	fNoContent = faultserver.Status(http.StatusNoContent)

	f400 = faultserver.Status(http.StatusBadRequest)
	f404 = faultserver.Status(http.StatusNotFound)
	f422 = faultserver.Status(http.StatusUnprocessableEntity)
	f410 = faultserver.Status(http.StatusGone)
	f500 = faultserver.Status(http.StatusInternalServerError)
	f501 = faultserver.Status(http.StatusNotImplemented)
	f502 = faultserver.Status(http.StatusBadGateway)
	f503 = faultserver.Status(http.StatusServiceUnavailable)
	f504 = faultserver.Status(http.StatusGatewayTimeout)
	f429 = faultserver.Status(http.StatusTooManyRequests)

	// Retry-After on a 500 is not a status that honours it: ignored.
	f500RetryAfter  = faultserver.RetryAfter(http.StatusInternalServerError, retryAfterSeconds)
	f429RetryAfter  = faultserver.RetryAfter(http.StatusTooManyRequests, retryAfterSeconds)
	f429RetryDate   = faultserver.RetryAfterDate(http.StatusTooManyRequests, retryAfterDate)
	f503RetryAfter  = faultserver.RetryAfter(http.StatusServiceUnavailable, retryAfterSeconds)
	f503RetryDate   = faultserver.RetryAfterDate(http.StatusServiceUnavailable, retryAfterDate)
	f504RetryAfter  = faultserver.RetryAfter(http.StatusGatewayTimeout, retryAfterSeconds)
	fMovedLoopback  = faultserver.Redirect(http.StatusFound, "/moved")
	fSeeOtherLoop   = faultserver.Redirect(http.StatusSeeOther, "/moved")
	fMovedMetadata  = faultserver.Redirect(http.StatusTemporaryRedirect, metadataURL)
	fPermMetadata   = faultserver.Redirect(http.StatusPermanentRedirect, metadataURL)
	fHang           = faultserver.Hang()
	fTrickleQuick   = faultserver.Trickle(4096, 1024, 5*time.Millisecond)  // 15 ms in all
	fTrickleSlow    = faultserver.Trickle(64<<10, 64, 50*time.Millisecond) // 51 s: cut by the timeout
	fTrickleSlow503 = faultserver.Fault{Kind: faultserver.KindTrickle, Status: http.StatusServiceUnavailable,
		Size: 64 << 10, Chunk: 64, Interval: 50 * time.Millisecond}
	fReset    = faultserver.Reset()
	fReset503 = faultserver.Fault{Kind: faultserver.KindReset, Status: http.StatusServiceUnavailable}
	// A 429 or 503 cut mid-body keeps its Retry-After.
	fReset429RetryAfter = faultserver.Fault{Kind: faultserver.KindReset, Status: http.StatusTooManyRequests,
		RetryAfter: retryAfterSeconds}
	fReset503RetryDate = faultserver.Fault{Kind: faultserver.KindReset, Status: http.StatusServiceUnavailable,
		RetryAfter: retryAfterDate, RetryAfterDate: true}
	fLarge = faultserver.LargeBody(1 << 20)
	fHuge  = faultserver.LargeBody(0) // faultserver.LargeBodySize, 50 MiB
	fDrop  = faultserver.Drop()
)

// endpoint is one subscription's destination: a path of the fault server
// with its plan.
type endpoint struct {
	path string
	// role says what the endpoint's mix is about, for the report.
	role string
	plan faultserver.Plan
	// gone is set on the endpoint whose script ends with a 410.
	gone bool
}

// w is faultserver.Weigh, short for the tables below (weights per mille).
var w = faultserver.Weigh

// endpoints returns the five endpoints of a soak. The mixes draw from the
// fault server's per-path streams, seeded with seed. The fifth endpoint's
// script is goneAt-1 faults drawn from its own mix with seed, then a 410:
// the 410 comes late, after goneAt-1 requests to that path.
func endpoints(seed uint64, goneAt int) []endpoint {
	eps := []endpoint{
		{path: "/sub-1", role: "bodies: slow, cut, large (and one 50 MiB body)", plan: faultserver.Plan{
			// The one 50 MiB body, first, so that it is served in every run.
			Script: []faultserver.Fault{fHuge},
			Mix: []faultserver.Weighted{
				w(780, fOK), w(40, fNoContent), w(30, fAccepted), w(40, fTrickleQuick), w(30, fLarge),
				w(40, fReset), w(10, fTrickleSlow), w(30, fDrop),
			},
		}},
		{path: "/sub-2", role: "server errors", plan: faultserver.Plan{Mix: []faultserver.Weighted{
			w(600, fOK), w(100, f500), w(30, f500RetryAfter), w(60, f502), w(60, f503), w(60, f504), w(20, f501),
			w(50, fReset503), w(10, fTrickleSlow503), w(10, fHang),
		}}},
		{path: "/sub-3", role: "rate limits: Retry-After in seconds and as a date, some cut mid-body", plan: faultserver.Plan{Mix: []faultserver.Weighted{
			w(570, fOK), w(40, fNoContent), w(50, f429), w(100, f429RetryAfter), w(60, f429RetryDate),
			w(60, f503RetryAfter), w(40, f503RetryDate), w(30, f504RetryAfter),
			w(30, fReset429RetryAfter), w(20, fReset503RetryDate),
		}}},
		{path: "/sub-4", role: "network failures, redirects, 4xx", plan: faultserver.Plan{Mix: []faultserver.Weighted{
			w(640, fOK), w(80, fDrop), w(10, fHang), w(50, fReset), w(10, fTrickleSlow),
			w(50, fMovedLoopback), w(50, fMovedMetadata), w(40, fPermMetadata), w(30, f400), w(20, f404),
			w(20, fSeeOtherLoop),
		}}},
		{path: "/sub-5", role: "a bit of everything, then 410 Gone", gone: true, plan: faultserver.Plan{Mix: []faultserver.Weighted{
			w(700, fOK), w(40, f500), w(40, f503), w(5, f502), w(30, f429RetryAfter), w(20, f429RetryDate),
			w(40, fDrop), w(5, fHang), w(30, fReset), w(20, fMovedMetadata), w(20, fSeeOtherLoop),
			w(20, fLarge), w(20, fTrickleQuick), w(10, f422),
		}}},
	}
	gone := &eps[len(eps)-1]
	gone.plan.Script = append(draw(gone.plan.Mix, seed, goneAt-1), f410)
	return eps
}

// draw returns n faults drawn from mix by weight, from a stream seeded
// with seed (apart from the fault server's).
func draw(mix []faultserver.Weighted, seed uint64, n int) []faultserver.Fault {
	rng := rand.New(rand.NewPCG(seed, 0x50a4))
	total := 0
	for _, m := range mix {
		total += m.Weight
	}
	out := make([]faultserver.Fault, 0, n+1)
	for range n {
		k := rng.IntN(total)
		for _, m := range mix {
			if k < m.Weight {
				out = append(out, m.Fault)
				break
			}
			k -= m.Weight
		}
	}
	return out
}

// expectation is how the client must record an attempt that met a fault.
type expectation struct {
	outcome outhook.AttemptOutcome
	class   string // the attempt's ErrorClass; empty on success
	status  int    // the recorded HTTP status; 0 when no status line came
	// raMin and raMax bound the recorded RetryAfter; both zero when the
	// attempt must carry none.
	raMin, raMax time.Duration
	// gone: the subscription is disabled (410).
	gone bool
}

// expect is the oracle: how outhook's webhook deliverer and core classify
// an attempt that met fault f (DESIGN.md, Delivery semantics), with the
// rule that a response whose status line and headers arrived is classified
// by its status whatever then happens to its body.
//
//   - Drop (no status line): retryable, class connect.
//   - Hang past the timeout: retryable, class timeout.
//   - Every other fault by its status, the body cut (Reset), too slow
//     (Trickle past the timeout) or too large (LargeBody) or not: 2xx
//     succeeds; 3xx fails for good, class blocked when its Location is an
//     address the guard refuses (here: any absolute location, all of which
//     point at 169.254.169.254) and http_status when it is this loopback
//     server; 410 fails for good and disables the subscription; 429, 502,
//     503 and 504 are retried with the Retry-After the fault sends (a
//     KindRespond or KindReset fault: a cut body keeps it); 501 fails for
//     good; other 5xx are retried; other 4xx fail for good.
func expect(f faultserver.Fault) expectation {
	switch f.Kind {
	case faultserver.KindDrop:
		return expectation{outcome: outhook.AttemptRetryable, class: outhook.ErrorClassConnect}
	case faultserver.KindHang:
		return expectation{outcome: outhook.AttemptRetryable, class: outhook.ErrorClassTimeout}
	}
	code := f.Code()
	e := expectation{status: code, class: outhook.ErrorClassHTTPStatus}
	switch {
	case code < 300:
		e.outcome, e.class = outhook.AttemptSucceeded, ""
	case code < 400:
		e.outcome = outhook.AttemptPermanent
		if f.Location != "" && !strings.HasPrefix(f.Location, "/") {
			e.class = outhook.ErrorClassBlocked
		}
	case code == http.StatusGone:
		e.outcome, e.gone = outhook.AttemptPermanent, true
	case code == http.StatusTooManyRequests || code == http.StatusBadGateway ||
		code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		e.outcome = outhook.AttemptRetryable
		if (f.Kind == faultserver.KindRespond || f.Kind == faultserver.KindReset) && f.RetryAfter > 0 {
			if f.RetryAfterDate {
				// An HTTP-date has whole seconds, and the deliverer reads
				// it a moment after the server wrote it.
				e.raMin, e.raMax = f.RetryAfter-2*time.Second, f.RetryAfter
			} else {
				e.raMin, e.raMax = f.RetryAfter.Truncate(time.Second), f.RetryAfter.Truncate(time.Second)
			}
		}
	case code == http.StatusNotImplemented:
		e.outcome = outhook.AttemptPermanent
	case code >= 500:
		e.outcome = outhook.AttemptRetryable
	default:
		e.outcome = outhook.AttemptPermanent
	}
	return e
}

// matches reports whether attempt a is what e expects.
func (e expectation) matches(a *outhook.Attempt) bool {
	if a.Outcome != e.outcome || a.ErrorClass != e.class || a.StatusCode != e.status {
		return false
	}
	if e.raMax == 0 {
		return a.RetryAfter == 0
	}
	return a.RetryAfter >= e.raMin && a.RetryAfter <= e.raMax
}

func (e expectation) String() string {
	return observed(e.outcome, e.class, e.status, e.raMax)
}

// observed labels an attempt's classification in the report:
// "retryable/http_status/429 ra" and the like.
func observed(outcome outhook.AttemptOutcome, class string, status int, retryAfter time.Duration) string {
	s := string(outcome)
	if class != "" {
		s += "/" + class
	}
	if status != 0 {
		s += fmt.Sprintf("/%d", status)
	}
	if retryAfter > 0 {
		s += " +retry-after"
	}
	return s
}
