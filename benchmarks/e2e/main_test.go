package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/outhook/outhook/internal/servicetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSmoke runs the whole program briefly, with small sizes, and checks
// that the last line is the JSON report and that every count matches. The
// durable rows it runs need no service (SQLite); the one that would
// (Postgres) is not run, and the program says why.
func TestSmoke(t *testing.T) {
	t.Setenv(envPostgres, "")
	t.Setenv(envNATS, "")
	var stdout, stderr bytes.Buffer
	code := mainErr([]string{
		"-duration", "500ms", "-concurrency", "8", "-payload", "200",
		"-latency-rate", "500", "-latency-duration", "300ms",
		"-scaling-duration", "200ms", "-scaling-subs", "1,3", "-scaling-payloads", "300,4096",
		"-pending", "500", "-queue-capacity", "256", "-backends", "memory,sqlite,postgres",
		"-emitters", "8", "-durable-backlog", "500", "-durable-latency-rate", "100",
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	if !strings.Contains(stderr.String(), "outhook-postgres: not run: no Postgres URL") {
		t.Errorf("stderr does not say why outhook-postgres is not run:\n%s", &stderr)
	}
	rep := lastReport(t, stdout.String())
	checkRows(t, rep, "ceiling,handrolled,outhook-memory,outhook-sqlite", 0.3)
	if rep.Rows[0].RatioToCeiling != 1 {
		t.Errorf("ceiling's ratio to itself is %v", rep.Rows[0].RatioToCeiling)
	}
	if sq := rep.Rows[3]; sq.Emitters != 8 || sq.RatioToRiverRaw != 0 || sq.LatencyRate != 100 {
		t.Errorf("outhook-sqlite: %d emitters, %v × river-raw (which did not run), latency at %d/s", sq.Emitters, sq.RatioToRiverRaw, sq.LatencyRate)
	}
	if mem := rep.Rows[2]; mem.Emitters != 0 || mem.LatencyRate != 500 {
		t.Errorf("outhook-memory: %d emitters, latency at %d/s", mem.Emitters, mem.LatencyRate)
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
	var targets []string
	for _, tg := range rep.Targets {
		targets = append(targets, tg.Target)
	}
	if len(targets) != 5 || !strings.Contains(targets[4], "outhook-sqlite") {
		t.Errorf("targets: %q", targets)
	}
	if len(rep.Skipped) != 1 || rep.Skipped[0].Row != "outhook-postgres" {
		t.Errorf("skipped: %v", rep.Skipped)
	}
	if !strings.Contains(stdout.String(), "deliveries/s") || !strings.Contains(stdout.String(), "outhook-postgres: not run") {
		t.Errorf("no table before the JSON line, or it does not say what was not run:\n%s", &stdout)
	}
}

// TestSmokeServices runs the rows that need Postgres and NATS briefly:
// river-raw, outhook-postgres and outhook-nats. It is skipped when
// OUTHOOK_POSTGRES_URL or OUTHOOK_NATS_URL is unset (and fails then under
// OUTHOOK_REQUIRE_SERVICES=1). It checks the counts, the ratio to
// river-raw, and that the run's schema and streams are gone afterwards.
func TestSmokeServices(t *testing.T) {
	pgURL, natsURL := servicetest.PostgresURL(t), servicetest.NATSURL(t)
	var stdout, stderr bytes.Buffer
	code := mainErr([]string{
		"-duration", "500ms", "-concurrency", "8", "-payload", "200",
		"-latency-rate", "200", "-durable-latency-rate", "100", "-latency-duration", "300ms", "-scaling=false", "-rounds", "1", "-queue-capacity", "256",
		"-backends", "postgres,nats,river-raw", "-postgres", pgURL, "-nats", natsURL,
		"-emitters", "8", "-durable-backlog", "2000", "-pg-max-conns", "10", "-durable-workers", "16",
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	rep := lastReport(t, stdout.String())
	checkRows(t, rep, "ceiling,handrolled,river-raw,outhook-postgres,outhook-nats (store: postgres)", 0.3)
	for _, r := range rep.Rows[2:] {
		if r.RatioToRiverRaw <= 0 || r.RatioToRiverRawMin <= 0 || r.RatioToRiverRawMax < r.RatioToRiverRawMin || r.Emitters != 8 {
			t.Errorf("row %s: %v × river-raw (rounds %v–%v), %d emitters", r.Name, r.RatioToRiverRaw, r.RatioToRiverRawMin, r.RatioToRiverRawMax, r.Emitters)
		}
	}
	if len(rep.Targets) != 1 || !strings.HasPrefix(rep.Targets[0].Target, "outhook-postgres") {
		t.Errorf("targets: %+v", rep.Targets)
	}

	// Nothing left behind: the schema and the streams the run named.
	schema := regexp.MustCompile(`schema (outhook_bench_[0-9a-f]+)`).FindStringSubmatch(stderr.String())
	prefix := regexp.MustCompile(`streams (OUTHOOK_BENCH_[0-9A-F]+)_`).FindStringSubmatch(stderr.String())
	if schema == nil || prefix == nil {
		t.Fatalf("stderr names no schema or stream prefix:\n%s", &stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema[1]).Scan(&n); err != nil || n != 0 {
		t.Errorf("schema %s: %d left (%v)", schema[1], n, err)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		if strings.HasPrefix(name, prefix[1]) || strings.HasPrefix(name, "KV_"+prefix[1]) {
			t.Errorf("stream %s left behind", name)
		}
	}
	if err := names.Err(); err != nil {
		t.Error(err)
	}
}

// lastReport decodes the report, the last line of the program's output.
func lastReport(t *testing.T, stdout string) Report {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var rep Report
	dec := json.NewDecoder(strings.NewReader(lines[len(lines)-1]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("last line is not the report: %v\n%s", err, lines[len(lines)-1])
	}
	return rep
}

// checkRows checks the main rows' names, counts, latency events (each row's
// rate for latencyS seconds) and costs.
func checkRows(t *testing.T, rep Report, names string, latencyS float64) {
	t.Helper()
	var got []string
	for _, r := range rep.Rows {
		got = append(got, r.Name)
		if r.Deliveries == 0 || r.Deliveries != r.Emitted || r.DeliveriesPerS <= 0 {
			t.Errorf("row %s: %d deliveries of %d emitted at %v/s", r.Name, r.Deliveries, r.Emitted, r.DeliveriesPerS)
		}
		latencyEvents := int64(float64(r.LatencyRate) * latencyS)
		if r.LatencyEvents != latencyEvents || r.P50ms <= 0 || r.P99ms < r.P50ms || r.LatencyOfferedPerS <= 0 {
			t.Errorf("row %s: latency over %d events (want %d) offered at %v/s: p50 %v ms, p99 %v ms",
				r.Name, r.LatencyEvents, latencyEvents, r.LatencyOfferedPerS, r.P50ms, r.P99ms)
		}
		if r.AllocsPerDelivery <= 0 || r.CPUsPer1000 <= 0 || r.PeakHeapMB <= 0 {
			t.Errorf("row %s: costs not measured: %+v", r.Name, r)
		}
	}
	if g := strings.Join(got, ","); g != names {
		t.Errorf("rows %s, want %s", g, names)
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
	_, err = b.latency(&rowSpec{name: "lossy", subs: 1}, lossy{url: rcv.url})
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
		{"-nats-store", "redis"},
		{"-emitters", "0"},
		{"-duration", "0s"},
		{"-scaling-subs", "1,x"},
		{"extra"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	t.Setenv(envPostgres, "postgres://from-env")
	t.Setenv(envNATS, "")
	o, err := parseFlags([]string{"-backends", "postgres, nats,river-raw", "-scaling=false"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.Backends, ",") != "postgres,nats,river-raw" || o.Scaling || o.PostgresURL != "postgres://from-env" {
		t.Errorf("options: %+v", o)
	}
	run, skipped := plan(o)
	if strings.Join(run, ",") != "postgres,river-raw" || len(skipped) != 1 || skipped[0].Row != "outhook-nats" {
		t.Errorf("plan: run %v, skipped %v", run, skipped)
	}
	if natsStore(o) != "postgres" {
		t.Errorf("the NATS row's store with Postgres: %s", natsStore(o))
	}
	o, err = parseFlags([]string{"-postgres", "postgres://from-flag", "-nats", "nats://x", "-sqlite=false"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	run, skipped = plan(o)
	if o.PostgresURL != "postgres://from-flag" || strings.Join(run, ",") != "memory,postgres,nats,river-raw" ||
		len(skipped) != 1 || skipped[0].Reason != "-sqlite=false" {
		t.Errorf("plan: run %v, skipped %v (options %+v)", run, skipped, o)
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
