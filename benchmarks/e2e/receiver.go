package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
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

// receiver is the loopback endpoint every row sends to: a plain net/http
// server that reads the whole body, counts the delivery and answers 204.
// While latency recording is on it also reads the emit time the payload
// carries and records emit→received.
type receiver struct {
	clock clock
	srv   *http.Server
	ln    net.Listener
	url   string
	done  chan struct{}

	count  atomic.Int64 // deliveries received since the last reset
	bad    atomic.Int64 // requests that could not be read
	last   atomic.Int64 // clock time of the latest delivery
	conns  atomic.Int64 // TCP connections accepted since the last reset
	record atomic.Bool  // record latencies

	mu  sync.Mutex
	lat []time.Duration

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
			r.mu.Lock()
			r.lat = append(r.lat, time.Duration(now-emit))
			r.mu.Unlock()
		} else {
			r.bad.Add(1)
		}
	}
	*bp = b
	r.bufs.Put(bp)
	// Counted before the answer: once a sender has its 204, the count
	// includes it.
	r.count.Add(1)
	for {
		old := r.last.Load()
		if now <= old || r.last.CompareAndSwap(old, now) {
			break
		}
	}
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

// reset starts a new phase: counts, the last receive time and latencies
// start again, and latency recording is set as asked.
func (r *receiver) reset(recordLatency bool) {
	r.count.Store(0)
	r.bad.Store(0)
	r.last.Store(0)
	r.conns.Store(0)
	r.mu.Lock()
	r.lat = nil
	r.mu.Unlock()
	r.record.Store(recordLatency)
}

// latencies returns the latencies recorded since the last reset.
func (r *receiver) latencies() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.lat...)
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
