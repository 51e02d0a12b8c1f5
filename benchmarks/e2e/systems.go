package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/memqueue"
	"github.com/outhook/outhook/queue"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/webhook"
)

// system is one way of getting events to the receiver: a row of the table.
type system interface {
	// emit hands one event over; delivery may happen later.
	emit(ctx context.Context, ev event) error
	// drain waits until every event emitted so far is delivered or given up.
	drain(ctx context.Context) error
	// close releases everything the system started.
	close(ctx context.Context) error
	// diagnose describes what went wrong when counts do not match.
	diagnose(ctx context.Context) string
}

// blaster is a system that runs its own throughput phase instead of being
// fed by the program's emitter: the ceiling, whose workers post back to
// back.
type blaster interface {
	blast(ctx context.Context, d time.Duration, clk clock) (emitted int64, err error)
}

// pool is a fixed set of goroutines working through a buffered channel of
// events: the dispatcher of the ceiling's latency phase and of the
// hand-rolled sender.
type pool struct {
	ch      chan event
	workers sync.WaitGroup
	pending sync.WaitGroup
}

func newPool(n, buffer int, work func(event)) *pool {
	p := &pool{ch: make(chan event, buffer)}
	p.workers.Add(n)
	for range n {
		go func() {
			defer p.workers.Done()
			for ev := range p.ch {
				work(ev)
				p.pending.Done()
			}
		}()
	}
	return p
}

func (p *pool) emit(ctx context.Context, ev event) error {
	p.pending.Add(1)
	select {
	case p.ch <- ev:
		return nil
	case <-ctx.Done():
		p.pending.Done()
		return ctx.Err()
	}
}

func (p *pool) drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		p.pending.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pool) close() {
	close(p.ch)
	p.workers.Wait()
}

// ---------------------------------------------------------------------------
// ceiling: raw net/http POSTs, no library.

type ceiling struct {
	url         string
	shape       payloadShape
	concurrency int
	tr          *http.Transport
	hc          *http.Client
	pool        *pool
	failed      atomic.Int64
	firstErr    atomic.Pointer[string]
}

func newCeiling(url string, shape payloadShape, concurrency, buffer int) *ceiling {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * concurrency,
		MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout:     90 * time.Second,
	}
	c := &ceiling{url: url, shape: shape, concurrency: concurrency, tr: tr,
		hc: &http.Client{Transport: tr, Timeout: 15 * time.Second}}
	bufs := sync.Pool{New: func() any { b := make([]byte, 0, 2*shape.size+256); return &b }}
	c.pool = newPool(concurrency, buffer, func(ev event) {
		bp := bufs.Get().(*[]byte)
		*bp = c.post(context.Background(), (*bp)[:0], ev)
		bufs.Put(bp)
	})
	return c
}

// post sends the body of ev, built in buf (the payload, then the envelope
// after it), and returns buf for reuse.
func (c *ceiling) post(ctx context.Context, buf []byte, ev event) []byte {
	payload := c.shape.appendPayload(buf, ev)
	body := appendEnvelope(payload[len(payload):], benchEvent, time.Now(), payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		var resp *http.Response
		if resp, err = c.hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
	}
	if err != nil {
		c.fail(err)
	}
	return payload[:0]
}

func (c *ceiling) fail(err error) {
	c.failed.Add(1)
	s := err.Error()
	c.firstErr.CompareAndSwap(nil, &s)
}

func (c *ceiling) blast(ctx context.Context, d time.Duration, clk clock) (int64, error) {
	var seq atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range c.concurrency {
		wg.Go(func() {
			buf := make([]byte, 0, 2*c.shape.size+256)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				buf = c.post(ctx, buf, event{seq: seq.Add(1) - 1, emitNs: clk.now()})
			}
		})
	}
	wg.Wait()
	return seq.Load(), ctx.Err()
}

func (c *ceiling) emit(ctx context.Context, ev event) error { return c.pool.emit(ctx, ev) }
func (c *ceiling) drain(ctx context.Context) error          { return c.pool.drain(ctx) }
func (c *ceiling) close(context.Context) error {
	c.pool.close()
	c.tr.CloseIdleConnections()
	return nil
}
func (c *ceiling) diagnose(context.Context) string {
	return failures(c.failed.Load(), c.firstErr.Load())
}

func failures(n int64, first *string) string {
	if n == 0 {
		return "no request failed"
	}
	msg := ""
	if first != nil {
		msg = ": " + *first
	}
	return fmt.Sprintf("%d requests failed%s", n, msg)
}

// ---------------------------------------------------------------------------
// handrolled: what a team writes without outhook — a goroutine pool that
// encodes each event, wraps it in the envelope, signs it like Standard
// Webhooks (HMAC-SHA256 over "id.timestamp.body") and posts it with
// go-retryablehttp.

type handrolled struct {
	url      string
	shape    payloadShape
	secret   []byte
	rc       *retryablehttp.Client
	tr       *http.Transport
	pool     *pool
	prefix   string
	failed   atomic.Int64
	firstErr atomic.Pointer[string]
}

func newHandrolled(url string, shape payloadShape, concurrency, buffer int) (*handrolled, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	rc := retryablehttp.NewClient()
	rc.Logger = nil
	rc.RetryMax = 4
	rc.HTTPClient.Timeout = 15 * time.Second
	tr, ok := rc.HTTPClient.Transport.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("retryablehttp's transport is a %T", rc.HTTPClient.Transport)
	}
	// The pooled transport of go-cleanhttp keeps GOMAXPROCS+1 idle
	// connections per host; a team sending to few hosts with a pool of
	// workers raises it to the pool's size, and so does this baseline.
	tr.MaxIdleConnsPerHost = concurrency
	tr.MaxIdleConns = 2 * concurrency
	tr.Proxy = nil
	h := &handrolled{url: url, shape: shape, secret: secret, rc: rc, tr: tr, prefix: "msg_" + strconv.FormatInt(time.Now().UnixNano(), 36) + "_"}
	h.pool = newPool(concurrency, buffer, h.send)
	return h, nil
}

func (h *handrolled) send(ev event) {
	if err := h.sendErr(ev); err != nil {
		h.failed.Add(1)
		s := err.Error()
		h.firstErr.CompareAndSwap(nil, &s)
	}
}

func (h *handrolled) sendErr(ev event) error {
	payload, err := json.Marshal(h.shape.event(ev))
	if err != nil {
		return err
	}
	body := appendEnvelope(make([]byte, 0, len(payload)+96), benchEvent, time.Now(), payload)
	id := h.prefix + strconv.FormatInt(ev.seq, 10)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, h.secret)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	sig := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))

	req, err := retryablehttp.NewRequestWithContext(context.Background(), http.MethodPost, h.url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", sig)
	resp, err := h.rc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func (h *handrolled) emit(ctx context.Context, ev event) error { return h.pool.emit(ctx, ev) }
func (h *handrolled) drain(ctx context.Context) error          { return h.pool.drain(ctx) }
func (h *handrolled) close(context.Context) error {
	h.pool.close()
	h.tr.CloseIdleConnections()
	return nil
}
func (h *handrolled) diagnose(context.Context) string {
	return failures(h.failed.Load(), h.firstErr.Load())
}

// ---------------------------------------------------------------------------
// outhook rows: EmitHook → a queue (memqueue, or a durable backend) →
// signed webhook deliverer through safehttp (loopback allowed).

type outhookConfig struct {
	url         string
	shape       payloadShape
	subs        int
	concurrency int
	capacity    int
	// retryFirst, when set, makes every delivery retry once, that long
	// after its first failed attempt, and then give up.
	retryFirst time.Duration
	// backend makes the queue and store of a durable row; nil means
	// memqueue (Capacity capacity, Concurrency concurrency) and the
	// client's MemoryStore.
	backend func(ctx context.Context, log *slog.Logger) (backend, error)
}

type outhookSys struct {
	client  *outhook.Client
	q       queue.Queue
	mem     *memqueue.Queue // the memory row's queue, for its lengths
	hc      *safehttp.Client
	shape   payloadShape
	release func(ctx context.Context) error
	tap     logTap
}

var discard = slog.New(slog.DiscardHandler)

func newOuthook(ctx context.Context, cfg outhookConfig) (*outhookSys, error) {
	s := &outhookSys{shape: cfg.shape, tap: newLogTap()}
	log := slog.New(s.tap)
	if cfg.retryFirst > 0 {
		// The pending row's client is stopped with every retry pending:
		// the queue's warning about them is expected.
		log = discard
	}
	var store outhook.Store // nil: the client's MemoryStore
	if cfg.backend == nil {
		q, err := memqueue.New(&memqueue.Config{Capacity: cfg.capacity, Concurrency: cfg.concurrency, Logger: log})
		if err != nil {
			return nil, err
		}
		s.q, s.mem = q, q
	} else {
		be, err := cfg.backend(ctx, log)
		if err != nil {
			return nil, err
		}
		s.q, s.release, store = be.queue, be.release, be.store
	}
	if err := s.start(ctx, cfg, store, log); err != nil {
		return nil, s.abandon(ctx, err)
	}
	return s, nil
}

// start builds, starts and subscribes the client on s.q and store.
func (s *outhookSys) start(ctx context.Context, cfg outhookConfig, store outhook.Store, log *slog.Logger) error {
	hc, err := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		return err
	}
	s.hc = hc
	wh, err := webhook.New(&webhook.Options{HTTP: hc})
	if err != nil {
		return err
	}
	reg := outhook.NewEventRegistry()
	if _, err := outhook.RegisterEvent(reg, outhook.EventDefinition[BenchEvent]{
		Hook:        benchHook,
		DisplayName: "Benchmark event",
		Description: "An event of the benchmark program",
	}, outhook.PluginMetadata{PluginID: benchPlugin}); err != nil {
		return err
	}
	occ := &outhook.Config{
		Registry:   reg,
		Deliverers: []outhook.Deliverer{wh},
		Queue:      s.q,
		Store:      store,
		Logger:     log,
	}
	if cfg.retryFirst > 0 {
		first := cfg.retryFirst
		occ.DeliveryRetry = outhook.RetryPolicy{NewBackOff: func() backoff.BackOff { return outhook.NewSchedule(first) }}
		// The row measures deliveries pending after one failed attempt
		// each: the cap on a failing destination would only make the
		// first attempts wait their turn (as delayed jobs, which the row
		// counts as done).
		occ.FailingMaxInFlight = -1
	}
	client, err := outhook.NewClient(occ)
	if err != nil {
		return err
	}
	s.client = client
	if err := client.Start(ctx); err != nil {
		return err
	}
	for i := range cfg.subs {
		secret, err := webhook.NewSecret()
		if err != nil {
			return err
		}
		conf, err := json.Marshal(map[string]any{"url": cfg.url, "secrets": []map[string]string{{"secret": secret}}})
		if err != nil {
			return err
		}
		if _, err := client.CreateSubscription(ctx, outhook.Subscription{
			Name:        fmt.Sprintf("bench %d", i+1),
			Events:      []string{benchEvent},
			DelivererID: webhook.ID,
			Config:      conf,
		}); err != nil {
			return err
		}
	}
	return nil
}

// abandon releases what newOuthook made before it failed with err.
func (s *outhookSys) abandon(ctx context.Context, err error) error {
	if s.client != nil {
		return errors.Join(err, s.close(ctx)) // stops the queue, releases the backend
	}
	if s.hc != nil {
		s.hc.Close()
	}
	if s.release != nil {
		_ = s.q.Stop(ctx)
		err = errors.Join(err, s.release(ctx))
	}
	return err
}

func (s *outhookSys) emit(ctx context.Context, ev event) error {
	return outhook.EmitHook(ctx, s.client, benchHook, s.shape.event(ev))
}

func (s *outhookSys) drain(ctx context.Context) error { return s.client.WaitIdle(ctx) }

// close stops the client (and with it the queue), then releases the
// backend's store and connections.
func (s *outhookSys) close(ctx context.Context) error {
	err := s.client.Stop(ctx)
	s.hc.Close()
	if s.release != nil {
		err = errors.Join(err, s.release(ctx))
	}
	return err
}

func (s *outhookSys) diagnose(ctx context.Context) string {
	var b strings.Builder
	if s.mem != nil {
		ready, delayed, running := s.mem.Len()
		fmt.Fprintf(&b, "queue: %d ready, %d delayed, %d running", ready, delayed, running)
	} else if dead, err := s.q.Dead(ctx, 3); err != nil {
		fmt.Fprintf(&b, "dead jobs: %v", err)
	} else {
		fmt.Fprintf(&b, "%d dead jobs", len(dead))
		for _, j := range dead {
			if len(j.Errors) > 0 {
				fmt.Fprintf(&b, "; dead job %s/%s: %s", j.Group, j.Kind, j.Errors[len(j.Errors)-1].Error)
			}
		}
	}
	for _, st := range []outhook.DeliveryStatus{outhook.DeliveryFailed, outhook.DeliveryPending} {
		ds, err := s.client.Deliveries(ctx, outhook.DeliveryQuery{Status: st, Limit: 3})
		if err != nil {
			fmt.Fprintf(&b, "; deliveries: %v", err)
			break
		}
		for _, d := range ds {
			fmt.Fprintf(&b, "; %s delivery %s after %d attempts: %s", st, d.ID, len(d.Attempts), d.LastError)
		}
	}
	if logs := s.tap.String(); logs != "" {
		b.WriteString("; logs: " + logs)
	}
	return b.String()
}
