package soaktest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest/faultserver"
	"github.com/outhook/outhook/safehttp"
)

// Tolerances of the checks.
const (
	// clockSlack absorbs the stores' microsecond times and the moment
	// between the client's clock readings and the receiver's.
	clockSlack = 5 * time.Millisecond
	// lateSlack: an attempt that timed out lasted at least the delivery
	// timeout less this.
	lateSlack = 20 * time.Millisecond
	// disableSlack bounds the time between the moment the client stamps a
	// subscription disabled and the moment the store has it.
	disableSlack = 10 * time.Second
	// maxProblems is how many problems are printed in full.
	maxProblems = 40
)

// States of a finished delivery in the tallies.
const (
	stateSucceeded = "succeeded"
	statePermanent = "failed: permanent"
	stateGone      = "failed: gone (410)"
	stateExhausted = "failed: retries exhausted"
	stateAbandoned = "failed: subscription disabled"
)

// abandonedError is the LastError of a delivery that ended without an
// attempt because its subscription was disabled (outhook's abandon).
const abandonedError = "subscription is disabled"

// soak holds one run's records and the result of its checks.
type soak struct {
	t       *testing.T
	ctx     context.Context
	client  *outhook.Client
	srv     *faultserver.Server
	tr      *tracker
	eps     []endpoint
	subs    []string // subscription IDs, by endpoint
	events  int      // events emitted, numbered 0 to events-1
	first   int      // events of the first batch, before the tail
	seed    uint64
	backend string
	logs    *logCounter

	// Collected at the end of the run.
	reqs   []faultserver.Request
	byID   map[string][]faultserver.Request // by webhook-id, in arrival order
	ds     [][]*outhook.Delivery            // by endpoint
	epOf   map[string]int                   // endpoint of a delivery, by delivery ID
	byDID  map[string]*outhook.Delivery     // by delivery ID
	subNow []outhook.Subscription           // by endpoint, at the end
	gone   *faultserver.Request             // the 410

	// Tallies.
	states     []map[string]int          // by endpoint, then state
	classes    map[string]int            // attempts by outcome and class
	faults     map[string]map[string]int // attempts by fault label, then observed classification
	attempts   int
	late       int            // timed out before an answer that was on its way (a slow machine)
	lateFault  map[string]int // late attempts by fault label
	notRouted  int            // first-batch events routed after the 410, so not to /sub-5
	afterGone  int            // requests to /sub-5 that arrived after the 410 did
	hugeServed int            // 50 MiB bodies served

	problems  []string
	nproblems int
}

// problem records a failed check.
func (s *soak) problem(format string, args ...any) {
	s.nproblems++
	if len(s.problems) < maxProblems {
		s.problems = append(s.problems, fmt.Sprintf(format, args...))
	}
}

// fail fails the test with the problems found, if any.
func (s *soak) fail() {
	if s.nproblems == 0 {
		return
	}
	more := ""
	if s.nproblems > len(s.problems) {
		more = fmt.Sprintf("\n  ... and %d more", s.nproblems-len(s.problems))
	}
	s.t.Errorf("soaktest: %d problems (seed %d; replay with %s=%d):\n  %s%s",
		s.nproblems, s.seed, EnvSeed, s.seed, strings.Join(s.problems, "\n  "), more)
}

// collect reads the receiver's records, every delivery with its attempts
// (paged, per subscription) and the subscriptions.
func (s *soak) collect() {
	t := s.t
	t.Helper()
	s.reqs = s.srv.Requests()
	s.byID = make(map[string][]faultserver.Request, len(s.reqs))
	for _, r := range s.reqs {
		s.byID[r.WebhookID] = append(s.byID[r.WebhookID], r)
	}
	for _, rs := range s.byID {
		slices.SortStableFunc(rs, func(a, b faultserver.Request) int { return a.Time.Compare(b.Time) })
	}
	s.ds = make([][]*outhook.Delivery, len(s.eps))
	s.epOf = map[string]int{}
	s.byDID = map[string]*outhook.Delivery{}
	s.subNow = make([]outhook.Subscription, len(s.eps))
	for i, id := range s.subs {
		q := outhook.DeliveryQuery{SubscriptionID: id, Limit: 1000}
		for {
			page, err := s.client.Deliveries(s.ctx, q)
			if err != nil {
				t.Fatalf("soaktest: list the deliveries of %s: %v", s.eps[i].path, err)
			}
			if len(page) == 0 {
				break
			}
			for j := range page {
				d := &page[j]
				if prev, dup := s.epOf[d.ID]; dup {
					s.problem("delivery %s listed twice (%s, then %s)", d.ID, s.eps[prev].path, s.eps[i].path)
					continue
				}
				s.epOf[d.ID] = i
				s.byDID[d.ID] = d
				s.ds[i] = append(s.ds[i], d)
			}
			q.After = page[len(page)-1].Cursor()
		}
		sub, err := s.client.Subscription(s.ctx, id)
		if err != nil {
			t.Fatalf("soaktest: read subscription %s: %v", s.eps[i].path, err)
		}
		s.subNow[i] = sub
	}
}

// check runs every check on the collected records.
func (s *soak) check() {
	s.states = make([]map[string]int, len(s.eps))
	for i := range s.states {
		s.states[i] = map[string]int{}
	}
	s.classes = map[string]int{}
	s.faults = map[string]map[string]int{}
	s.lateFault = map[string]int{}
	s.checkRequests()
	s.checkSubscriptions()
	for i := range s.eps {
		for _, d := range s.ds[i] {
			s.checkDelivery(i, d)
		}
	}
	s.checkRouting()
	s.checkTracker()
	// A slow machine may make an attempt time out before it reads an
	// answer that was on its way. More than 1 % of the attempts, or more
	// than a fifth of one fault's, is not a slow machine: a fault whose
	// status line is sent at once and whose attempts time out, all of
	// them, is misclassified (a slow trickle recorded as a timeout where
	// its status decides, for one).
	if s.late > max(5, s.attempts/100) {
		s.problem("%d attempts timed out before the answer the receiver sent (more than 1 %% of %d)", s.late, s.attempts)
	}
	for _, label := range slices.Sorted(maps.Keys(s.lateFault)) {
		n := 0
		for _, c := range s.faults[label] {
			n += c
		}
		if late := s.lateFault[label]; late > max(3, n/5) {
			s.problem("fault %q: %d of its %d attempts were recorded as timeouts: more than a slow machine explains", label, late, n)
		}
	}
}

// checkRequests: every request the receiver saw is a signed POST of a
// delivery to its path; there is one 410, on the gone endpoint; the 50 MiB
// body was served and the client stopped reading it early.
func (s *soak) checkRequests() {
	for i := range s.reqs {
		r := &s.reqs[i]
		ep, ok := s.epOf[r.WebhookID]
		switch {
		case r.WebhookID == "" || !ok:
			s.problem("request #%d to %s (fault %s) has webhook-id %q, the ID of no delivery", r.Seq, r.Path, r.Fault, r.WebhookID)
			continue
		case r.Path != s.eps[ep].path:
			s.problem("request #%d for delivery %s went to %s, not to its subscription's %s", r.Seq, r.WebhookID, r.Path, s.eps[ep].path)
		case r.Method != "POST" || r.BodySize == 0:
			s.problem("request #%d for delivery %s: %s with a %d-byte body", r.Seq, r.WebhookID, r.Method, r.BodySize)
		case !strings.HasPrefix(r.Header.Get("Webhook-Signature"), "v1,") || r.Header.Get("Webhook-Timestamp") == "":
			s.problem("request #%d for delivery %s is not signed: webhook-signature %q", r.Seq, r.WebhookID, r.Header.Get("Webhook-Signature"))
		}
		if !r.Done {
			s.problem("request #%d (%s) is not done at the end", r.Seq, r.Fault)
		}
		if r.Fault == f410 {
			if s.gone != nil {
				s.problem("a second 410: request #%d (the first was #%d)", r.Seq, s.gone.Seq)
			}
			s.gone = r
		}
		if r.Fault == fHuge {
			s.hugeServed++
			if r.Sent >= faultserver.LargeBodySize || r.Sent < safehttp.DefaultMaxBody {
				s.problem("request #%d: the 50 MiB body was read to %d bytes: the client must keep %d and stop reading soon after",
					r.Seq, r.Sent, safehttp.DefaultMaxBody)
			}
		}
	}
	if s.gone == nil {
		s.problem("the receiver never answered the scripted 410")
	} else if !s.eps[len(s.eps)-1].gone || s.gone.Path != s.eps[len(s.eps)-1].path {
		s.problem("the 410 went to %s", s.gone.Path)
	}
	if s.hugeServed != 1 {
		s.problem("the 50 MiB body was served %d times, want once", s.hugeServed)
	}
}

// checkSubscriptions: the gone endpoint's subscription is disabled for
// that reason; the others are enabled.
func (s *soak) checkSubscriptions() {
	for i, sub := range s.subNow {
		if s.eps[i].gone {
			if !sub.Disabled || !strings.HasPrefix(sub.DisabledReason, "destination gone") {
				s.problem("%s: the 410 did not disable its subscription: disabled %t, reason %q", s.eps[i].path, sub.Disabled, sub.DisabledReason)
			}
			continue
		}
		if sub.Disabled {
			s.problem("%s: subscription disabled (%q) without a 410", s.eps[i].path, sub.DisabledReason)
		}
	}
}

// checkDelivery checks one delivery: its final state, each attempt against
// the request it made, the chain of attempts, and that no two of them
// overlapped.
func (s *soak) checkDelivery(ep int, d *outhook.Delivery) {
	path := s.eps[ep].path
	as := d.Attempts
	reqs := s.byID[d.ID]
	s.attempts += len(as)

	if d.Status != outhook.DeliverySucceeded && d.Status != outhook.DeliveryFailed {
		s.problem("%s %s: %s at the end, with %d attempts", path, d.ID, d.Status, len(as))
		return
	}
	for i := range as {
		a := &as[i]
		s.classes[observed(a.Outcome, a.ErrorClass, 0, 0)]++
		if a.Number != i+1 || a.Trigger != outhook.TriggerScheduled {
			s.problem("%s %s: attempt %d has number %d and trigger %s", path, d.ID, i+1, a.Number, a.Trigger)
		}
		end := a.StartedAt.Add(a.Duration)
		if i+1 == len(as) {
			break
		}
		next := &as[i+1]
		// No two attempts in flight at once.
		if end.After(next.StartedAt.Add(clockSlack)) {
			s.problem("%s %s: attempt %d (%s + %s) overlaps attempt %d (%s)", path, d.ID, i+1,
				a.StartedAt.Format(time.StampMicro), a.Duration, i+2, next.StartedAt.Format(time.StampMicro))
		}
		// The retry came when scheduled, and the schedule honoured the
		// Retry-After, capped, and nothing more (the policy has no delay).
		want := min(a.RetryAfter, MaxRetryAfter)
		if got := a.NextAttemptAt.Sub(end); a.NextAttemptAt.IsZero() || got < want-clockSlack || got > want+clockSlack {
			s.problem("%s %s: attempt %d (retry-after %s) scheduled the next %s after it ended, want %s", path, d.ID, i+1, a.RetryAfter, got, want)
		}
		if next.StartedAt.Before(a.NextAttemptAt.Add(-clockSlack)) {
			s.problem("%s %s: attempt %d started at %s, before its time %s", path, d.ID, i+2,
				next.StartedAt.Format(time.StampMicro), a.NextAttemptAt.Format(time.StampMicro))
		}
	}
	s.matchRequests(path, d, as, reqs)
	s.checkChain(ep, d)
}

// matchRequests pairs each attempt with the request that arrived during it
// and checks the attempt against the fault applied to that request.
func (s *soak) matchRequests(path string, d *outhook.Delivery, as []outhook.Attempt, reqs []faultserver.Request) {
	j := 0
	for i := range as {
		a := &as[i]
		lo, hi := a.StartedAt.Add(-clockSlack), a.StartedAt.Add(a.Duration+clockSlack)
		timedOut := a.ErrorClass == outhook.ErrorClassTimeout && a.Duration >= DeliveryTimeout-lateSlack
		if timedOut {
			// The receiver may read the request after the client gave up.
			hi = time.Now()
			if i+1 < len(as) {
				hi = as[i+1].StartedAt
			}
		}
		if j >= len(reqs) || reqs[j].Time.Before(lo) || reqs[j].Time.After(hi) {
			if timedOut {
				// The request never reached the receiver in time: a slow
				// machine, not a fault of the receiver.
				s.late++
				continue
			}
			got := "no request left"
			if j < len(reqs) {
				got = fmt.Sprintf("the next request (#%d, %s) arrived at %s", reqs[j].Seq, reqs[j].Fault, reqs[j].Time.Format(time.StampMicro))
			}
			s.problem("%s %s: attempt %d (%s, %s + %s) made no request the receiver saw: %s", path, d.ID, i+1,
				observed(a.Outcome, a.ErrorClass, a.StatusCode, a.RetryAfter), a.StartedAt.Format(time.StampMicro), a.Duration, got)
			continue
		}
		r := &reqs[j]
		j++
		label := r.Fault.String()
		if s.faults[label] == nil {
			s.faults[label] = map[string]int{}
		}
		s.faults[label][observed(a.Outcome, a.ErrorClass, a.StatusCode, a.RetryAfter)]++
		e := expect(r.Fault)
		if e.matches(a) {
			continue
		}
		if timedOut && a.Outcome == outhook.AttemptRetryable && a.StatusCode == 0 {
			// The answer was on its way (every fault but a hang sends
			// something at once), but the machine was too slow to read it
			// within the timeout: counted, and bounded below.
			s.late++
			s.lateFault[label]++
			continue
		}
		s.problem("%s %s: attempt %d met %q and was recorded %s (retry-after %s, error %q), want %s (retry-after %s to %s)",
			path, d.ID, i+1, label, observed(a.Outcome, a.ErrorClass, a.StatusCode, a.RetryAfter), a.RetryAfter, a.Error,
			e, e.raMin, e.raMax)
	}
	for _, r := range reqs[j:] {
		s.problem("%s %s: request #%d (%s) at %s is the attempt of no record: %d attempts recorded for %d requests",
			path, d.ID, r.Seq, r.Fault, r.Time.Format(time.StampMicro), len(as), len(reqs))
	}
}

// checkChain checks that the attempts of d lead to its state: every
// attempt but the last retryable, the last deciding.
func (s *soak) checkChain(ep int, d *outhook.Delivery) {
	path := s.eps[ep].path
	as := d.Attempts
	state := ""
	for i := range len(as) - 1 {
		if as[i].Outcome != outhook.AttemptRetryable {
			s.problem("%s %s: attempt %d was %s, yet attempt %d followed", path, d.ID, i+1, as[i].Outcome, i+2)
		}
	}
	abandoned := func() {
		state = stateAbandoned
		if !s.eps[ep].gone || d.Status != outhook.DeliveryFailed || d.LastError != abandonedError {
			s.problem("%s %s: %s after %d attempts (last error %q): only the deliveries of a disabled subscription end early",
				path, d.ID, d.Status, len(as), d.LastError)
		}
	}
	if len(as) == 0 {
		abandoned()
	} else {
		last := &as[len(as)-1]
		want := outhook.DeliveryFailed
		switch last.Outcome {
		case outhook.AttemptSucceeded:
			state, want = stateSucceeded, outhook.DeliverySucceeded
		case outhook.AttemptPermanent:
			state = statePermanent
			if last.StatusCode == 410 {
				state = stateGone
			}
		case outhook.AttemptRetryable:
			state = stateExhausted
			if len(as) < MaxAttempts {
				abandoned()
			}
		}
		if d.Status != want {
			s.problem("%s %s: %s, but its last attempt (%d of %d) was %s", path, d.ID, d.Status, len(as), MaxAttempts, last.Outcome)
		}
		if state != stateAbandoned && d.LastError != last.Error {
			s.problem("%s %s: last error %q, but its last attempt's error is %q", path, d.ID, d.LastError, last.Error)
		}
		if state == stateExhausted && len(as) > MaxAttempts {
			s.problem("%s %s: %d attempts, more than %d", path, d.ID, len(as), MaxAttempts)
		}
		if !last.NextAttemptAt.IsZero() && state != stateAbandoned {
			s.problem("%s %s: its last attempt scheduled another at %s", path, d.ID, last.NextAttemptAt)
		}
	}
	s.states[ep][state]++
	if s.eps[ep].gone && len(as) > 0 && !s.subNow[ep].UpdatedAt.IsZero() {
		// Nothing is attempted once the subscription is disabled.
		if last := as[len(as)-1]; last.StartedAt.After(s.subNow[ep].UpdatedAt.Add(disableSlack)) {
			s.problem("%s %s: attempt %d started at %s, after the subscription was disabled at %s", path, d.ID, len(as),
				last.StartedAt.Format(time.StampMicro), s.subNow[ep].UpdatedAt.Format(time.StampMicro))
		}
	}
}

// checkRouting: every event has exactly one delivery to each subscription
// that was enabled when the event was routed, the deliveries of one event
// share its message ID, and no event reaches the gone endpoint after its
// 410.
func (s *soak) checkRouting() {
	byN := make([]map[int]*outhook.Delivery, len(s.eps))
	msg := map[int]string{}
	msgN := map[string]int{}
	for i := range s.eps {
		byN[i] = make(map[int]*outhook.Delivery, len(s.ds[i]))
		for _, d := range s.ds[i] {
			var p Ping
			if err := json.Unmarshal(d.Payload, &p); err != nil || p.N < 0 || p.N >= s.events {
				s.problem("%s %s: payload %s is no event of the run", s.eps[i].path, d.ID, d.Payload)
				continue
			}
			if prev := byN[i][p.N]; prev != nil {
				s.problem("%s: event %d has two deliveries, %s and %s", s.eps[i].path, p.N, prev.ID, d.ID)
			}
			byN[i][p.N] = d
			if m, ok := msg[p.N]; ok && m != d.MessageID {
				s.problem("event %d: deliveries with message IDs %s and %s", p.N, m, d.MessageID)
			}
			if n, ok := msgN[d.MessageID]; ok && n != p.N {
				s.problem("message %s carries events %d and %d", d.MessageID, n, p.N)
			}
			msg[p.N], msgN[d.MessageID] = d.MessageID, p.N
		}
	}
	for n := range s.events {
		for i, ep := range s.eps {
			if byN[i][n] != nil {
				if ep.gone && n >= s.first {
					s.problem("%s: event %d, emitted after the 410, was routed to the disabled subscription (%s)", ep.path, n, byN[i][n].ID)
				}
				continue
			}
			if !ep.gone {
				s.problem("%s: event %d has no delivery: lost", ep.path, n)
				continue
			}
			if n >= s.first {
				continue
			}
			// An event of the first batch may miss the gone endpoint only
			// if it was routed after the 410.
			s.notRouted++
			for k := range s.eps {
				if sib := byN[k][n]; sib != nil && s.gone != nil && sib.CreatedAt.Before(s.gone.Time.Add(-clockSlack)) {
					s.problem("%s: event %d was routed at %s, before the 410 (%s), yet not to %s", s.eps[k].path, n,
						sib.CreatedAt.Format(time.StampMicro), s.gone.Time.Format(time.StampMicro), ep.path)
				}
			}
		}
	}
	if s.gone != nil {
		for _, r := range s.byID {
			for _, q := range r {
				if q.Path == s.gone.Path && q.Time.After(s.gone.Time) {
					s.afterGone++
				}
			}
		}
	}
}

// checkTracker: the deliverer was never called twice at once for one
// delivery, and each call is a recorded attempt.
func (s *soak) checkTracker() {
	s.tr.mu.Lock()
	defer s.tr.mu.Unlock()
	for _, o := range s.tr.overlaps {
		s.problem("in flight twice: %s", o)
	}
	calls := 0
	for id, n := range s.tr.calls {
		calls += n
		ep, ok := s.epOf[id]
		if !ok {
			s.problem("the deliverer was called %d times for %s, a delivery the store does not list", n, id)
			continue
		}
		if d := s.byDID[id]; len(d.Attempts) != n {
			s.problem("%s %s: the deliverer was called %d times, %d attempts recorded", s.eps[ep].path, id, n, len(d.Attempts))
		}
	}
	if calls != s.attempts {
		s.problem("the deliverer was called %d times, %d attempts recorded", calls, s.attempts)
	}
}

// report logs the tallies and appends them to OUTHOOK_PROOF_REPORT.
func (s *soak) report(emitted, firstDone, elapsed time.Duration) {
	var b strings.Builder
	deliveries := 0
	for _, ds := range s.ds {
		deliveries += len(ds)
	}
	fmt.Fprintf(&b, "soaktest: fault soak (%s): seed %d, %d events × %d subscriptions in %s (emitting %s, first batch idle at %s): %d deliveries, %d attempts, %d requests (%.0f attempts/s)\n",
		s.backend, s.seed, s.events, len(s.eps), elapsed.Round(time.Millisecond), emitted.Round(time.Millisecond),
		firstDone.Round(time.Millisecond), deliveries, s.attempts, len(s.reqs), float64(s.attempts)/elapsed.Seconds())
	for i, ep := range s.eps {
		fmt.Fprintf(&b, "  %s (%s): %d deliveries: %s", ep.path, ep.role, len(s.ds[i]), counts(s.states[i]))
		if ep.gone {
			fmt.Fprintf(&b, "; events of the first batch routed after the 410: %d, requests that arrived after it: %d; disabled: %t",
				s.notRouted, s.afterGone, s.subNow[i].Disabled)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "  attempts by outcome/class: %s\n", counts(s.classes))
	b.WriteString("  attempts by fault → recorded as:\n")
	for _, label := range slices.Sorted(maps.Keys(s.faults)) {
		n := 0
		for _, c := range s.faults[label] {
			n += c
		}
		fmt.Fprintf(&b, "    %-34s %6d  → %s\n", label, n, counts(s.faults[label]))
	}
	fmt.Fprintf(&b, "  checks: %d problems; in flight twice %d; timed out before an answer on its way (a slow machine) %d%s\n",
		s.nproblems, len(s.tr.overlaps), s.late, byLabel(s.lateFault))
	fmt.Fprintf(&b, "  client and queue logs (warnings and errors): %s\n", s.logs)
	tally := s.srv.Tally().String()
	b.WriteString("  receiver: ")
	b.WriteString(strings.ReplaceAll(strings.TrimRight(tally, "\n"), "\n", "\n  "))
	b.WriteString("\n")
	out := b.String()
	s.t.Log(out)
	if path := os.Getenv(EnvReport); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, _ = f.WriteString(out)
			_ = f.Close()
		}
	}
}

// byLabel prints a non-empty tally in parentheses.
func byLabel(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	return " (" + counts(m) + ")"
}

// counts prints a tally sorted by key: "a 3, b 5".
func counts(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
