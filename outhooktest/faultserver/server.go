package faultserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ErrClosed is returned by Wait and SetPlan on a closed server.
var ErrClosed = errors.New("faultserver: server closed")

// Options configure a Server. A nil *Options means the defaults: every
// request answered 200 OK.
type Options struct {
	// Plan decides the faults of requests to paths without a plan of their
	// own in Paths.
	Plan Plan
	// Paths gives URL paths ("/sub-1") plans of their own, so that one
	// server stands in for several endpoints. A request's path is matched
	// exactly, without its query.
	Paths map[string]Plan
	// Seed seeds the random draws from the plans' mixes. Each plan draws
	// from a stream of its own (see Plan), so for a given seed a plan
	// picks the same faults for the same sequence of its requests.
	Seed uint64
	// Now is the clock of request records and Retry-After dates. Nil
	// means time.Now.
	Now func() time.Time
}

// validate names the field at fault.
func (o *Options) validate() error {
	if err := o.Plan.validate("Options.Plan"); err != nil {
		return err
	}
	for _, path := range slices.Sorted(maps.Keys(o.Paths)) {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("faultserver: Options.Paths[%q]: a path starts with /", path)
		}
		p := o.Paths[path]
		if err := p.validate(fmt.Sprintf("Options.Paths[%q]", path)); err != nil {
			return err
		}
	}
	return nil
}

// Request records one request the server received.
type Request struct {
	// Seq numbers requests from 1 in the order they were recorded, which is
	// the order their faults were picked in.
	Seq int
	// Time is when the request had been read, by Options.Now.
	Time   time.Time
	Method string
	Path   string
	// Header is the request's header. Do not modify it.
	Header http.Header
	// WebhookID is the request's webhook-id header: the delivery ID of an
	// outhook webhook delivery.
	WebhookID string
	// BodySize is the size of the request body, in bytes.
	BodySize int64
	// Fault is what the server did with the request.
	Fault Fault
	// Sent counts the bytes of response body written (for KindLargeBody,
	// far fewer than Fault.Size when the client stopped reading); it is
	// final once Done.
	Sent int64
	// Done reports that the server has finished with the request.
	Done bool
}

// Tally counts the requests received.
type Tally struct {
	Total int
	// ByFault counts requests by fault label (Fault.String).
	ByFault map[string]int
	// ByPath counts requests by URL path.
	ByPath map[string]int
	// ByPathFault counts requests by URL path, then fault label.
	ByPathFault map[string]map[string]int
}

// String prints the tally: the total, then one line per fault label and
// one per path, sorted.
func (t Tally) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "requests: %d\n", t.Total)
	for _, f := range slices.Sorted(maps.Keys(t.ByFault)) {
		fmt.Fprintf(&b, "  fault %-30s %d\n", f, t.ByFault[f])
	}
	for _, p := range slices.Sorted(maps.Keys(t.ByPath)) {
		fmt.Fprintf(&b, "  path  %-30s %d", p, t.ByPath[p])
		sep := " ("
		for _, f := range slices.Sorted(maps.Keys(t.ByPathFault[p])) {
			fmt.Fprintf(&b, "%s%s: %d", sep, f, t.ByPathFault[p][f])
			sep = ", "
		}
		b.WriteString(")\n")
	}
	return b.String()
}

// Server is a loopback HTTP server that answers each request with a fault
// its plans pick, and records every request. It is safe for concurrent
// use.
type Server struct {
	srv     *httptest.Server
	url     string
	now     func() time.Time
	seed    uint64
	filler  []byte        // body bytes, shared read-only by every response
	closing chan struct{} // closed by Close: requests in flight end
	once    sync.Once
	conns   atomic.Int64
	running sync.WaitGroup // handlers, hijacked connections' included

	mu      sync.Mutex
	def     *planState            // the plan of paths without their own
	paths   map[string]*planState // by path
	reqs    []Request
	active  int           // requests recorded and not done
	changed chan struct{} // closed and replaced on every change of reqs
	closed  bool
}

// New starts a server on a loopback address. With tb (which may be nil) it
// fails the test on invalid options and closes the server when the test
// ends; without, it panics on invalid options and the caller must Close
// it.
func New(tb testing.TB, opts *Options) *Server {
	if tb != nil {
		tb.Helper()
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := o.validate(); err != nil {
		if tb != nil {
			tb.Fatal(err)
		}
		panic(err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{
		now:     o.Now,
		seed:    o.Seed,
		filler:  []byte(strings.Repeat("x", 32<<10)),
		closing: make(chan struct{}),
		def:     newPlanState(o.Plan, o.Seed, ""),
		paths:   make(map[string]*planState, len(o.Paths)),
		changed: make(chan struct{}),
	}
	for path, p := range o.Paths {
		s.paths[path] = newPlanState(p, o.Seed, path)
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	// The URL is known before the first handler runs, which reads it.
	s.url = "http://" + s.srv.Listener.Addr().String()
	s.srv.Start()
	if tb != nil {
		tb.Cleanup(s.Close)
	}
	return s
}

// URL returns the server's base URL, "http://127.0.0.1:<port>", without a
// trailing slash.
func (s *Server) URL() string { return s.url }

// Close ends the requests in flight (a hanging, trickling or streaming
// request has its connection closed without a complete answer), stops the
// server and waits for its goroutines. It may be called more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closing)
		// Connections whose handler is blocked writing to a client that
		// does not read are closed here; the handlers of the others see
		// closing and abort.
		s.srv.CloseClientConnections()
		s.srv.Close()
		s.running.Wait()
		s.mu.Lock()
		s.closed = true
		s.notify()
		s.mu.Unlock()
	})
}

// SetPlan replaces the plan of path ("" for the server's plan, used by
// paths without their own): its script starts again, and its random
// stream starts again from Options.Seed.
func (s *Server) SetPlan(path string, p Plan) error {
	field := "Plan"
	if path != "" {
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("faultserver: SetPlan: path %q does not start with /", path)
		}
		field = fmt.Sprintf("Paths[%q]", path)
	}
	if err := p.validate(field); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	ps := newPlanState(p, s.seed, path)
	if path == "" {
		s.def = ps
	} else {
		s.paths[path] = ps
	}
	return nil
}

// Requests returns the requests recorded so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// Len returns the number of requests recorded so far.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// Connections returns the number of TCP connections the server has
// accepted, whether or not a request came on them: zero proves that no
// client reached it.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// Tally counts the requests recorded so far by fault and by path.
func (s *Server) Tally() Tally {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := Tally{Total: len(s.reqs), ByFault: map[string]int{}, ByPath: map[string]int{}, ByPathFault: map[string]map[string]int{}}
	for _, r := range s.reqs {
		label := r.Fault.String()
		t.ByFault[label]++
		t.ByPath[r.Path]++
		if t.ByPathFault[r.Path] == nil {
			t.ByPathFault[r.Path] = map[string]int{}
		}
		t.ByPathFault[r.Path][label]++
	}
	return t
}

// Wait returns once at least n requests have been recorded. A request is
// recorded, its fault picked, once its body has been read and before the
// fault is applied: the client sees no answer to a request before it is
// recorded. Wait returns ctx.Err() when ctx ends first, and ErrClosed when
// the server closes with fewer requests.
func (s *Server) Wait(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() bool { return len(s.reqs) >= n })
}

// WaitIdle returns once every request recorded so far is done (see
// Request.Done), or ctx.Err() when ctx ends first. On a closed server it
// returns nil at once: Close has waited for every request.
func (s *Server) WaitIdle(ctx context.Context) error {
	return s.waitFor(ctx, func() bool { return s.active == 0 })
}

// waitFor waits until cond, called with s.mu held, is true.
func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, closed, ch := cond(), s.closed, s.changed
		s.mu.Unlock()
		switch {
		case ok:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notify wakes the waiters. s.mu must be held.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// arrive picks the fault of r, whose body counted size bytes, and records
// it, returning the fault and the index of the record.
func (s *Server) arrive(r *http.Request, size int64) (Fault, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.paths[r.URL.Path]
	if ps == nil {
		ps = s.def
	}
	f := ps.pick()
	s.reqs = append(s.reqs, Request{
		Seq: len(s.reqs) + 1, Time: s.now(), Method: r.Method, Path: r.URL.Path,
		Header: r.Header.Clone(), WebhookID: r.Header.Get("Webhook-Id"), BodySize: size, Fault: f,
	})
	s.active++
	s.notify()
	return f, len(s.reqs) - 1
}

// finish marks record i done, with sent bytes of body written.
func (s *Server) finish(i int, sent int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs[i].Sent, s.reqs[i].Done = sent, true
	s.active--
	s.notify()
}

// serve reads the request, picks and records its fault, and applies it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.running.Add(1)
	defer s.running.Done()
	size, err := io.Copy(io.Discard, r.Body)
	if err != nil {
		return // the client went away while sending
	}
	f, i := s.arrive(r, size)
	var sent int64
	defer func() { s.finish(i, sent) }()
	switch f.Kind {
	case KindRespond:
		sent = s.respond(w, f)
	case KindHang:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		// Returning would answer 200: drop the connection instead.
		panic(http.ErrAbortHandler)
	case KindTrickle:
		sent = s.trickle(w, r, f)
	case KindReset:
		sent = s.reset(w, f)
	case KindLargeBody:
		sent = s.large(w, r, f)
	case KindDrop:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
			return
		}
		panic(http.ErrAbortHandler)
	}
}

// respond answers a KindRespond fault.
func (s *Server) respond(w http.ResponseWriter, f Fault) int64 {
	h := w.Header()
	if v := s.retryAfter(f); v != "" {
		h.Set("Retry-After", v)
	}
	if f.Location != "" {
		loc := f.Location
		if strings.HasPrefix(loc, "/") {
			loc = s.url + loc
		}
		h.Set("Location", loc)
	}
	code := f.Code()
	body := strconv.Itoa(code) + " " + http.StatusText(code) + "\n"
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	n, _ := io.WriteString(w, body)
	return int64(n)
}

// retryAfter is the Retry-After value of f, or "".
func (s *Server) retryAfter(f Fault) string {
	switch {
	case f.RetryAfter <= 0:
		return ""
	case f.RetryAfterDate:
		return s.now().Add(f.RetryAfter).UTC().Format(http.TimeFormat)
	}
	return strconv.FormatInt(int64(f.RetryAfter/time.Second), 10)
}

// trickle answers a KindTrickle fault.
func (s *Server) trickle(w http.ResponseWriter, r *http.Request, f Fault) int64 {
	rc := http.NewResponseController(w)
	size := f.size()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(f.Code())
	if err := rc.Flush(); err != nil {
		return 0
	}
	var sent int64
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for sent < size {
		if sent > 0 && f.Interval > 0 {
			if timer == nil {
				timer = time.NewTimer(f.Interval)
			} else {
				timer.Reset(f.Interval)
			}
			select {
			case <-timer.C:
			case <-r.Context().Done():
				return sent
			case <-s.closing:
				panic(http.ErrAbortHandler)
			}
		}
		chunk := int(min(int64(f.Chunk), size-sent))
		n, err := s.writeFiller(w, chunk)
		sent += n
		if err != nil || rc.Flush() != nil {
			return sent
		}
	}
	return sent
}

// large answers a KindLargeBody fault, writing until the body is complete,
// the client stops reading or the server closes.
func (s *Server) large(w http.ResponseWriter, r *http.Request, f Fault) int64 {
	size := f.size()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(f.Code())
	var sent int64
	for sent < size {
		select {
		case <-s.closing:
			panic(http.ErrAbortHandler)
		default:
		}
		if r.Context().Err() != nil {
			return sent
		}
		n, err := s.writeFiller(w, int(min(int64(len(s.filler)), size-sent)))
		sent += n
		if err != nil {
			return sent
		}
	}
	return sent
}

// reset answers a KindReset fault: the status line, the headers announcing
// the whole body, half of it, then a TCP reset.
func (s *Server) reset(w http.ResponseWriter, f Fault) int64 {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	size := f.size()
	code := f.Code()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n", code, http.StatusText(code), size)
	if v := s.retryAfter(f); v != "" {
		fmt.Fprintf(buf, "Retry-After: %s\r\n", v)
	}
	buf.WriteString("\r\n")
	sent, _ := s.writeFiller(buf, int(size/2))
	_ = buf.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		// Close then discards what is unsent and sends RST, not FIN.
		_ = tc.SetLinger(0)
	}
	return sent
}

// writeFiller writes n bytes of filler to w.
func (s *Server) writeFiller(w io.Writer, n int) (int64, error) {
	var sent int64
	for n > 0 {
		k := min(n, len(s.filler))
		m, err := w.Write(s.filler[:k])
		sent += int64(m)
		if err != nil {
			return sent, err
		}
		n -= k
	}
	return sent, nil
}
