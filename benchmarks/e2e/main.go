// Command e2e is outhook's end-to-end benchmark: in one process and one run
// it sends events to the same loopback receiver in several ways and prints
// them side by side, so that the ratios hold even on a noisy machine.
//
//	go run ./benchmarks/e2e                       # defaults: 10 s per row, scaling rows
//	go run ./benchmarks/e2e -duration 1s -scaling=false
//
// Rows:
//
//   - ceiling: raw net/http POSTs of the same body with the same
//     concurrency over keep-alive connections, no library: the limit of
//     this machine.
//   - handrolled: a goroutine pool that encodes, signs (HMAC-SHA256, as
//     Standard Webhooks) and posts each event with go-retryablehttp.
//   - outhook-memory: EmitHook → in-memory queue → signed webhook
//     deliverer through safehttp.
//   - river-raw: River's own throughput on Postgres (InsertMany in
//     batches of 1,000, a no-op worker): the ceiling of the durable rows.
//   - outhook-postgres, outhook-sqlite, outhook-nats: as outhook-memory,
//     on the durable backends, emitted from -emitters goroutines.
//
// The durable rows need their services: -postgres (or
// OUTHOOK_POSTGRES_URL) for outhook-postgres and river-raw, -nats (or
// OUTHOOK_NATS_URL) for outhook-nats; without them the row is not run and
// the program says so. SQLite needs only a temporary directory. Each run
// works in a Postgres schema and NATS streams of its own, removed at the
// end.
//
// For each: deliveries/s, the ratio to the ceiling (and, for the durable
// rows, to river-raw), emit→received latency p50/p99 at a fixed offered
// load, CPU seconds per 1,000 deliveries, allocations per delivery and
// peak heap. Then the scaling rows:
// subscriptions per event, payload sizes, and deliveries pending against a
// receiver that is down. Every delivery is counted at the receiver; a phase
// whose count is not emitted × subscriptions fails the run (exit status 1).
// The last line of output is the report as one JSON object.
//
// See BENCHMARKS.md at the root of the module.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

func main() {
	os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
}

// mainErr runs the program with args and returns its exit status.
func mainErr(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "e2e:", err)
		return 2
	}
	_, skipped := plan(opts)
	for _, s := range skipped {
		fmt.Fprintf(stderr, "%s: not run: %s\n", s.Row, s.Reason)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	progress := stderr
	if opts.JSONOnly {
		progress = io.Discard
	}
	rep, err := run(ctx, opts, progress)
	if err != nil {
		var ce *CountError
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, "e2e: COUNT MISMATCH:", err)
		} else {
			fmt.Fprintln(stderr, "e2e:", err)
		}
		return 1
	}
	if !opts.JSONOnly {
		printTables(stdout, rep)
	}
	enc := json.NewEncoder(stdout) // one line, ending in a newline
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rep); err != nil {
		fmt.Fprintln(stderr, "e2e:", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	o := defaultOptions()
	fs := flag.NewFlagSet("e2e", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.Duration, "duration", o.Duration, "throughput time of each main row, in all rounds")
	fs.IntVar(&o.Rounds, "rounds", o.Rounds, "rounds the main rows' throughput phases are interleaved in (each round gives each row -duration/-rounds)")
	fs.IntVar(&o.Concurrency, "concurrency", o.Concurrency, "concurrent senders: ceiling and handrolled workers, memqueue Concurrency")
	fs.IntVar(&o.Payload, "payload", o.Payload, "payload size in bytes (the JSON the hook carries; the envelope adds about 90 bytes)")
	fs.IntVar(&o.Subs, "subs", o.Subs, "subscriptions per event in the outhook rows")
	backends := fs.String("backends", strings.Join(allBackends, ","), "comma-separated backends to run: memory, sqlite, postgres, nats, river-raw (the durable ones when their service is given)")
	fs.StringVar(&o.PostgresURL, "postgres", "", "Postgres URL of outhook-postgres and river-raw (default $"+envPostgres+"; none: those rows are not run)")
	fs.StringVar(&o.NATSURL, "nats", "", "NATS JetStream URL of outhook-nats (default $"+envNATS+"; none: the row is not run)")
	fs.BoolVar(&o.SQLite, "sqlite", o.SQLite, "run outhook-sqlite (in a temporary directory)")
	fs.StringVar(&o.SQLiteDir, "sqlite-dir", "", "directory the SQLite files are made in (default the system's temporary directory)")
	fs.StringVar(&o.NATSStore, "nats-store", o.NATSStore, "store of outhook-nats: postgres, sqlite, or auto (postgres when -postgres is set)")
	fs.IntVar(&o.Emitters, "emitters", o.Emitters, "goroutines emitting at once (one EmitHook call each) in the durable rows")
	fs.IntVar(&o.DurableBacklog, "durable-backlog", o.DurableBacklog, "durable rows: emitters wait while this many events are emitted and not yet delivered (0: no bound)")
	fs.IntVar(&o.DurableWorkers, "durable-workers", o.DurableWorkers, "MaxWorkers of the durable queues and river-raw (0: the backends' defaults, River 100, NATS 16)")
	fs.IntVar(&o.PGMaxConns, "pg-max-conns", o.PGMaxConns, "connections of each Postgres pool (0: the URL's pool_max_conns, or pgx's default)")
	fs.BoolVar(&o.Scaling, "scaling", o.Scaling, "run the scaling rows (subscriptions, payload sizes, pending deliveries)")
	fs.DurationVar(&o.ScalingDuration, "scaling-duration", o.ScalingDuration, "throughput time of each scaling row, in all rounds")
	fs.IntVar(&o.ScalingRounds, "scaling-rounds", o.ScalingRounds, "rounds each scaling group (its rows and their ceiling) is interleaved in")
	scalingSubs := fs.String("scaling-subs", joinInts(o.ScalingSubs), "subscriptions per event of the scaling rows")
	scalingPayloads := fs.String("scaling-payloads", joinInts(o.ScalingPayloads), "payload sizes in bytes of the scaling rows")
	fs.IntVar(&o.Pending, "pending", o.Pending, "deliveries left pending against a receiver that is down (0 skips the row)")
	fs.IntVar(&o.LatencyRate, "latency-rate", o.LatencyRate, "events/s offered in the latency phase")
	fs.IntVar(&o.DurableLatency, "durable-latency-rate", o.DurableLatency, "events/s offered in the latency phase of the durable rows (and river-raw)")
	fs.DurationVar(&o.LatencyDuration, "latency-duration", o.LatencyDuration, "length of the latency phase of each main row")
	fs.IntVar(&o.QueueCapacity, "queue-capacity", o.QueueCapacity, "memqueue Capacity, and the hand-rolled sender's channel buffer")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", o.DrainTimeout, "longest wait for the deliveries of a phase")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the first-round throughput phase of the -cpuprofile-row row to this file (-rounds 1 profiles the whole -duration)")
	fs.StringVar(&o.CPUProfileRow, "cpuprofile-row", o.CPUProfileRow, "the main row -cpuprofile profiles: "+strings.Join(profileRows, ", "))
	fs.StringVar(&o.MemProfile, "memprofile", "", "write a heap profile, taken while the pending deliveries are held, to this file")
	fs.BoolVar(&o.JSONOnly, "json-only", false, "print only the JSON line (no progress, no table)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.PostgresURL == "" {
		o.PostgresURL = os.Getenv(envPostgres)
	}
	if o.NATSURL == "" {
		o.NATSURL = os.Getenv(envNATS)
	}
	o.Backends = nil
	for b := range strings.SplitSeq(*backends, ",") {
		switch b = strings.TrimSpace(b); {
		case b == "":
		case slices.Contains(allBackends, b):
			if !slices.Contains(o.Backends, b) {
				o.Backends = append(o.Backends, b)
			}
		default:
			return o, fmt.Errorf("-backends: unknown backend %q (want %s)", b, strings.Join(allBackends, ", "))
		}
	}
	var err error
	if o.ScalingSubs, err = parseInts("-scaling-subs", *scalingSubs); err != nil {
		return o, err
	}
	if o.ScalingPayloads, err = parseInts("-scaling-payloads", *scalingPayloads); err != nil {
		return o, err
	}
	return o, o.check()
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func parseInts(flagName, s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s: %q is not a positive number", flagName, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// printTables prints the report for people.
func printTables(w io.Writer, rep *Report) {
	c := rep.Config
	durableLatency := ""
	if slices.ContainsFunc(rep.Rows, func(r Row) bool { return r.Emitters > 0 }) {
		durableLatency = fmt.Sprintf(" (durable rows: %d events/s)", c.DurableLatency)
	}
	fmt.Fprintf(w, "\n%s, %d CPUs (GOMAXPROCS %d); %gs per row in %d interleaved rounds, concurrency %d, %s payload, %d subscription(s) per event; latency at %d events/s%s for %gs\n\n",
		rep.Go, rep.CPUs, rep.GOMAXPROCS, c.DurationS, c.Rounds, c.Concurrency, sizeLabel(c.PayloadBytes), c.Subs, c.LatencyRate, durableLatency, c.LatencyDuration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "row\tdeliveries\tdeliveries/s\temits/s\t× ceiling\t(rounds)\t× river-raw\t(rounds)\tp50 ms\tp99 ms\tCPU s/1k\tallocs/dlv\tpeak heap MB\tnew conns\t")
	var notes []string
	for _, r := range rep.Rows {
		raw, rawRounds := "–", ""
		if r.RatioToRiverRaw > 0 {
			raw = fmt.Sprintf("%.3f", r.RatioToRiverRaw)
			rawRounds = fmt.Sprintf("%.2f–%.2f", r.RatioToRiverRawMin, r.RatioToRiverRawMax)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.3f\t%.2f–%.2f\t%s\t%s\t%.3f\t%.3f\t%.4f\t%.1f\t%.1f\t%d\t\n", r.Name, r.Deliveries, r.DeliveriesPerS,
			r.EmitsPerS, r.RatioToCeiling, r.RatioMin, r.RatioMax, raw, rawRounds, r.P50ms, r.P99ms, r.CPUsPer1000, r.AllocsPerDelivery, r.PeakHeapMB, r.NewConns)
		if r.Note != "" {
			notes = append(notes, r.Name+": "+r.Note)
		}
	}
	tw.Flush()
	if c.Emitters > 0 && slices.ContainsFunc(rep.Rows, func(r Row) bool { return r.Emitters > 0 }) {
		fmt.Fprintf(w, "\ndurable rows: %d emitters (one EmitHook call each, river-raw: InsertMany of 1,000 from one), at most %d events undelivered; CPU, allocations and heap are this process's only (not the database's or the NATS server's)\n",
			c.Emitters, c.DurableBacklog)
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	if len(rep.Scaling) > 0 {
		fmt.Fprintf(w, "\nscaling (%gs per row in %d interleaved rounds; the ratio is to the ceiling above it, same payload, same rounds)\n\n", c.ScalingDuration, c.ScalingRounds)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "row\tdeliveries\tdeliveries/s\t× ceiling\t(rounds)\tCPU s/1k\tallocs/dlv\tpeak heap MB\tnew conns\t")
		for _, r := range rep.Scaling {
			if r.Kind == "pending" {
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.3f\t%.2f–%.2f\t%.4f\t%.1f\t%.1f\t%d\t\n", r.Name, r.Deliveries, r.DeliveriesPerS,
				r.RatioToCeiling, r.RatioMin, r.RatioMax, r.CPUsPer1000, r.AllocsPerDelivery, r.PeakHeapMB, r.NewConns)
		}
		tw.Flush()
		for _, r := range rep.Scaling {
			if r.Kind == "pending" {
				fmt.Fprintf(w, "\n%s: %d deliveries pending after %.1fs, heap in use %.1f MB: %.0f bytes per pending delivery, %.0f beyond its %d-byte payload (live heap %.0f bytes each)\n",
					r.Name, r.Pending, r.SecondsToPend, r.HeapInuseMB, r.HeapPerPendingBytes, r.HeapBeyondPayloadBytes, r.PayloadBytes, r.LiveHeapPerPending)
			}
		}
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets")
		for _, t := range rep.Targets {
			verdict := "NOT MET"
			if t.Met {
				verdict = "met"
			}
			fmt.Fprintf(w, "  %-7s  %s: %g (limit %g)\n", verdict, t.Target, t.Value, t.Limit)
		}
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintln(w)
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "%s: not run: %s\n", s.Row, s.Reason)
	}
	fmt.Fprintln(w)
}
