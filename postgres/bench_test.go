package postgres_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/internal/benchkit"
	"github.com/outhook/outhook/internal/servicetest"
	"github.com/outhook/outhook/postgres"
)

// benchPool returns a pool in a new, migrated schema, with
// OUTHOOK_BENCH_CONNS connections (default 40; 0 means pgx's default), whose
// connections carry an application_name of their own, and a statement
// tracer when OUTHOOK_BENCH_TRACE is set.
func benchPool(b *testing.B) (*pgxpool.Pool, *statementTracer) {
	b.Helper()
	url, schema := servicetest.PostgresSchema(b)
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(b, err)
	conns := 40
	if v := os.Getenv("OUTHOOK_BENCH_CONNS"); v != "" {
		conns, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	if conns > 0 {
		cfg.MaxConns = int32(conns)
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = schema
	var tr *statementTracer
	if os.Getenv("OUTHOOK_BENCH_TRACE") != "" {
		tr = &statementTracer{stats: map[string]*statementStats{}}
		cfg.ConnConfig.Tracer = tr
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	require.NoError(b, postgres.Migrate(context.Background(), pool))
	return pool, tr
}

// measure is what a benchmark row measures besides its time: the CPU this
// process and the pool's Postgres backends used, and the statements run.
type measure struct {
	b      *testing.B
	pool   *pgxpool.Pool
	tr     *statementTracer
	app    string
	goCPU  time.Duration
	pgCPU  map[int]time.Duration
	pgSeen bool
}

// startMeasure resets the benchmark's timer and starts measuring.
func startMeasure(b *testing.B, pool *pgxpool.Pool, tr *statementTracer) *measure {
	m := &measure{b: b, pool: pool, tr: tr, app: pool.Config().ConnConfig.RuntimeParams["application_name"]}
	tr.reset()
	m.pgCPU, m.pgSeen = m.backendCPU()
	m.goCPU = benchkit.ProcessCPU()
	b.ResetTimer()
	return m
}

// stop stops the timer and reports deliveries/s and the CPU per delivery.
func (m *measure) stop() {
	m.b.StopTimer()
	goCPU := benchkit.ProcessCPU() - m.goCPU
	n := float64(m.b.N)
	m.b.ReportMetric(n/m.b.Elapsed().Seconds(), "deliveries/s")
	m.b.ReportMetric(float64(goCPU.Microseconds())/n, "go-µs/op")
	if after, ok := m.backendCPU(); ok && m.pgSeen {
		var pg time.Duration
		for pid, t := range after {
			pg += t - m.pgCPU[pid] // a backend started since counts from zero
		}
		m.b.ReportMetric(float64(pg.Microseconds())/n, "pg-µs/op")
	}
	if m.b.N > 1 && m.tr != nil {
		m.tr.print(m.b.Name(), m.b.N)
		m.tableStats()
	}
}

// tableStats prints the row operations on each table of the schema, per
// delivery.
func (m *measure) tableStats() {
	time.Sleep(1500 * time.Millisecond) // backends report their counts within a second
	rows, err := m.pool.Query(context.Background(), `SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del,
		pg_total_relation_size(relid) FROM pg_stat_user_tables WHERE schemaname = current_schema() ORDER BY relname`)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	defer rows.Close()
	n := float64(m.b.N)
	for rows.Next() {
		var name string
		var ins, upd, hot, del, size int64
		if err := rows.Scan(&name, &ins, &upd, &hot, &del, &size); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
		fmt.Fprintf(os.Stderr, "  %-32s ins %.2f upd %.2f (hot %.2f) del %.2f per op, %d kB\n", name, float64(ins)/n, float64(upd)/n, float64(hot)/n, float64(del)/n, size/1024)
	}
}

// clockTicks is USER_HZ, the unit of /proc/*/stat times: 100 on Linux.
const clockTicks = 100

// backendCPU returns the CPU time of the Postgres backends of the pool, by
// PID, read from /proc: only when Postgres runs on this machine.
func (m *measure) backendCPU() (map[int]time.Duration, bool) {
	rows, err := m.pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, m.app)
	if err != nil {
		return nil, false
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, false
	}
	out := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return nil, false
		}
		i := strings.LastIndexByte(string(st), ')')
		f := strings.Fields(string(st)[i+1:])
		if len(f) < 13 {
			return nil, false
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		out[int(pid)] = time.Duration(float64(u+s) / clockTicks * float64(time.Second))
	}
	return out, true
}

// benchRiverRaw is River alone: see BenchmarkDeliveries.
func benchRiverRaw(b *testing.B) {
	pool, tr := benchPool(b)
	var m *measure
	benchkit.RiverRaw(b, riverpgxv5.New(pool), testLogger(), func() { m = startMeasure(b, pool, tr) }, func() { m.stop() })
}

// statementTracer counts the statements run through a pool, by their
// first words, and the time they took.
type statementTracer struct {
	mu    sync.Mutex
	stats map[string]*statementStats
}

type statementStats struct {
	n   int
	dur time.Duration
}

type traceKey struct{}

type traceStart struct {
	sql string
	at  time.Time
}

func (t *statementTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, traceKey{}, traceStart{data.SQL, time.Now()})
}

func (t *statementTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	st, ok := ctx.Value(traceKey{}).(traceStart)
	if !ok {
		return
	}
	key := strings.Join(strings.Fields(st.sql), " ")
	if len(key) > 90 {
		key = key[:90]
	}
	t.mu.Lock()
	s := t.stats[key]
	if s == nil {
		s = &statementStats{}
		t.stats[key] = s
	}
	s.n++
	s.dur += time.Since(st.at)
	t.mu.Unlock()
}

func (t *statementTracer) reset() {
	if t == nil {
		return
	}
	t.mu.Lock()
	clear(t.stats)
	t.mu.Unlock()
}

func (t *statementTracer) print(name string, n int) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.stats))
	total := 0
	for k, s := range t.stats {
		keys = append(keys, k)
		total += s.n
	}
	slices.SortFunc(keys, func(a, c string) int { return t.stats[c].n - t.stats[a].n })
	fmt.Fprintf(os.Stderr, "%s: %d deliveries, %.3f statements per delivery\n", name, n, float64(total)/float64(n))
	for _, k := range keys {
		s := t.stats[k]
		fmt.Fprintf(os.Stderr, "%9.4f/op %8.0fµs avg  %s\n", float64(s.n)/float64(n), float64(s.dur.Microseconds())/float64(s.n), k)
	}
}
