package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// clock is the one time base of a run: every time the program records is a
// monotonic duration since it, so emit and receive times compare exactly.
type clock struct{ base time.Time }

func newClock() clock { return clock{base: time.Now()} }

// now is the time since the base, in nanoseconds.
func (c clock) now() int64 { return int64(time.Since(c.base)) }

// tally counts the deliveries of a phase where they arrive (the receiver,
// or the worker of river-raw, which delivers nothing) and, while recording
// is on, their emit→received latencies.
type tally struct {
	count  atomic.Int64 // deliveries since the last reset
	last   atomic.Int64 // clock time of the latest delivery
	record atomic.Bool  // record latencies

	mu    sync.Mutex
	lat   []time.Duration
	emits []int64 // the emit time of each latency
}

// arrived counts a delivery received at now.
func (t *tally) arrived(now int64) {
	t.count.Add(1)
	for {
		old := t.last.Load()
		if now <= old || t.last.CompareAndSwap(old, now) {
			return
		}
	}
}

// latency records now-emit, a delivery's emit→received latency.
func (t *tally) latency(now, emit int64) {
	t.mu.Lock()
	t.lat = append(t.lat, time.Duration(now-emit))
	t.emits = append(t.emits, emit)
	t.mu.Unlock()
}

// reset starts a new phase: counts, the last receive time and latencies
// start again, and latency recording is set as asked.
func (t *tally) reset(recordLatency bool) {
	t.count.Store(0)
	t.last.Store(0)
	t.mu.Lock()
	t.lat, t.emits = nil, nil
	t.mu.Unlock()
	t.record.Store(recordLatency)
}

// latencies returns the latencies recorded since the last reset.
func (t *tally) latencies() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Duration(nil), t.lat...)
}

// halves returns the median latency of the deliveries of the events
// emitted in the first half of the phase, and of those emitted in the
// second: when the second is much higher, a queue grew through the phase.
func (t *tally) halves() (first, second time.Duration) {
	t.mu.Lock()
	idx := make([]int, len(t.lat))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(t.emits[a], t.emits[b]) })
	lat := make([]time.Duration, len(idx))
	for i, k := range idx {
		lat[i] = t.lat[k]
	}
	t.mu.Unlock()
	if len(lat) < 2 {
		return 0, 0
	}
	a, b := lat[:len(lat)/2], lat[len(lat)/2:]
	slices.Sort(a)
	slices.Sort(b)
	return percentile(a, 0.5), percentile(b, 0.5)
}

// receiver is the loopback endpoint every row sends to: a plain net/http
// server that reads the whole body, counts the delivery and answers 204.
// While latency recording is on it also reads the emit time the payload
// carries and records emit→received.
type receiver struct {
	tally
	clock clock
	srv   *http.Server
	ln    net.Listener
	url   string
	done  chan struct{}

	bad   atomic.Int64 // requests that could not be read
	conns atomic.Int64 // TCP connections accepted since the last reset

	bufs sync.Pool
}

// emitKey precedes the emit time in every payload: 19 digits of
// nanoseconds since the run's clock base.
var emitKey = []byte(`"emitNs":"`)

func startReceiver(c clock) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{clock: c, ln: ln, url: "http://" + ln.Addr().String() + "/hook", done: make(chan struct{})}
	r.bufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	r.srv = &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				r.conns.Add(1)
			}
		},
	}
	go func() {
		defer close(r.done)
		_ = r.srv.Serve(ln)
	}()
	return r, nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	bp := r.bufs.Get().(*[]byte)
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := req.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			r.bad.Add(1)
			*bp = b
			r.bufs.Put(bp)
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
	}
	now := r.clock.now()
	if r.record.Load() {
		if emit, ok := emitTime(b); ok {
			r.latency(now, emit)
		} else {
			r.bad.Add(1)
		}
	}
	*bp = b
	r.bufs.Put(bp)
	// Counted before the answer: once a sender has its 204, the count
	// includes it.
	r.arrived(now)
	w.WriteHeader(http.StatusNoContent)
}

// emitTime reads the emit time a body carries.
func emitTime(b []byte) (int64, bool) {
	i := bytes.Index(b, emitKey)
	if i < 0 || i+len(emitKey)+19 > len(b) {
		return 0, false
	}
	var v int64
	for _, c := range b[i+len(emitKey) : i+len(emitKey)+19] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// reset starts a new phase: counts, connections, the last receive time and
// latencies start again, and latency recording is set as asked.
func (r *receiver) reset(recordLatency bool) {
	r.tally.reset(recordLatency)
	r.bad.Store(0)
	r.conns.Store(0)
}

// close stops the server and waits for its goroutine.
func (r *receiver) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	<-r.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// deadURL returns a loopback URL on which nothing listens: a port taken and
// released at once, so connecting to it is refused.
func deadURL() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", err
	}
	return "http://" + addr + "/hook", nil
}
