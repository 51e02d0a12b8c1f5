package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke runs the whole program briefly, with small sizes, and checks
// that the last line is the JSON report and that every count matches.
func TestSmoke(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := mainErr([]string{
		"-duration", "500ms", "-concurrency", "8", "-payload", "200",
		"-latency-rate", "500", "-latency-duration", "300ms",
		"-scaling-duration", "200ms", "-scaling-subs", "1,3", "-scaling-payloads", "300,4096",
		"-pending", "500", "-queue-capacity", "256", "-backends", "memory,sqlite",
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	if !strings.Contains(stderr.String(), "outhook-sqlite: not available yet") {
		t.Errorf("stderr does not say sqlite is not available:\n%s", &stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep Report
	dec := json.NewDecoder(strings.NewReader(lines[len(lines)-1]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("last line is not the report: %v\n%s", err, lines[len(lines)-1])
	}
	var names []string
	for _, r := range rep.Rows {
		names = append(names, r.Name)
		if r.Deliveries == 0 || r.Deliveries != r.Emitted || r.DeliveriesPerS <= 0 {
			t.Errorf("row %s: %d deliveries of %d emitted at %v/s", r.Name, r.Deliveries, r.Emitted, r.DeliveriesPerS)
		}
		if want := int64(500 * 0.3); r.LatencyEvents != want || r.P50ms <= 0 || r.P99ms < r.P50ms {
			t.Errorf("row %s: latency over %d events (want %d): p50 %v ms, p99 %v ms", r.Name, r.LatencyEvents, want, r.P50ms, r.P99ms)
		}
		if r.AllocsPerDelivery <= 0 || r.CPUsPer1000 <= 0 || r.PeakHeapMB <= 0 {
			t.Errorf("row %s: costs not measured: %+v", r.Name, r)
		}
	}
	if got, want := strings.Join(names, ","), "ceiling,handrolled,outhook-memory"; got != want {
		t.Errorf("rows %s, want %s", got, want)
	}
	if rep.Rows[0].RatioToCeiling != 1 {
		t.Errorf("ceiling's ratio to itself is %v", rep.Rows[0].RatioToCeiling)
	}
	kinds := map[string]int{}
	for _, s := range rep.Scaling {
		kinds[s.Kind]++
		switch s.Kind {
		case "pending":
			if s.Pending != 500 || s.HeapPerPendingBytes <= 0 {
				t.Errorf("pending row: %+v", s)
			}
		default:
			if s.Deliveries == 0 || s.Deliveries != s.Emitted*int64(s.Subs) {
				t.Errorf("scaling row %s: %d deliveries of %d emitted × %d subscriptions", s.Name, s.Deliveries, s.Emitted, s.Subs)
			}
		}
	}
	if kinds["subs"] != 3 || kinds["payload"] != 4 || kinds["pending"] != 1 {
		t.Errorf("scaling rows by kind: %v", kinds)
	}
	if len(rep.Targets) != 4 {
		t.Errorf("targets: %+v", rep.Targets)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0] != "outhook-sqlite" {
		t.Errorf("skipped: %v", rep.Skipped)
	}
	if !strings.Contains(stdout.String(), "deliveries/s") {
		t.Errorf("no table before the JSON line:\n%s", &stdout)
	}
}

// lossy delivers only the events with an even number.
type lossy struct{ url string }

func (l lossy) emit(ctx context.Context, ev event) error {
	if ev.seq%2 == 1 {
		return nil
	}
	shape := newPayloadShape(100)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(shape.appendPayload(nil, ev)))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}
func (lossy) drain(context.Context) error     { return nil }
func (lossy) close(context.Context) error     { return nil }
func (lossy) diagnose(context.Context) string { return "half the events were dropped" }

// TestCountMismatch checks that a phase that loses deliveries fails.
func TestCountMismatch(t *testing.T) {
	clk := newClock()
	rcv, err := startReceiver(clk)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		http.DefaultClient.CloseIdleConnections()
		if err := rcv.close(); err != nil {
			t.Error(err)
		}
	}()
	opts := defaultOptions()
	opts.LatencyRate, opts.LatencyDuration = 200, 50*time.Millisecond
	b := &bench{opts: opts, clk: clk, rcv: rcv, log: io.Discard, ctx: context.Background(), shape: newPayloadShape(100)}
	_, _, _, err = b.latency("lossy", lossy{url: rcv.url}, 1)
	var ce *CountError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a *CountError", err)
	}
	if ce.Emitted != 10 || ce.Received != 5 || !strings.Contains(err.Error(), "half the events were dropped") {
		t.Errorf("error: %v", err)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-backends", "memory,mysql"},
		{"-duration", "0s"},
		{"-scaling-subs", "1,x"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	o, err := parseFlags([]string{"-backends", "postgres, nats", "-scaling=false"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.Backends, ",") != "postgres,nats" || o.Scaling {
		t.Errorf("options: %+v", o)
	}
}

func TestPayloadSize(t *testing.T) {
	for _, size := range []int{1, 300, 10 << 10} {
		s := newPayloadShape(size)
		ev := event{seq: 42, emitNs: 123456789}
		raw, err := json.Marshal(s.event(ev))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, s.appendPayload(nil, ev)) {
			t.Errorf("size %d: json.Marshal and appendPayload differ:\n%s\n%s", size, raw, s.appendPayload(nil, ev))
		}
		if size >= 100 && len(raw) != size {
			t.Errorf("size %d: payload is %d bytes", size, len(raw))
		}
		if got, ok := emitTime(appendEnvelope(nil, benchEvent, time.Now(), raw)); !ok || got != ev.emitNs {
			t.Errorf("size %d: emit time %d, %v", size, got, ok)
		}
	}
}
