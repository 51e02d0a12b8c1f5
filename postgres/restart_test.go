package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/clustertest"
	"github.com/outhook/outhook/internal/servicetest"
	"github.com/outhook/outhook/postgres"
)

// TestPostgresRestart: a client on Postgres (River queue and store on one
// pool) delivers under a steady load of emits when its PostgreSQL server
// crashes (pg_ctl stop -m immediate: every backend killed, crash recovery
// at the next start) and comes back on the same port after an outage. The
// client reconnects by itself; emits that fail during the outage are tried
// again by the test until they succeed, so every event the test emitted is
// committed; each must be delivered to both subscriptions at least once,
// and nothing may be left pending, failed or dead. The client runs with the
// default retry schedules, as an application would.
//
// The server is a private one, started by the test in a temporary
// directory (the shared server of the other tests is never touched). It
// needs PostgreSQL's binaries (/usr/lib/postgresql/*/bin) and, as root, the
// user postgres and runuser: without them the test is skipped, or fails
// under OUTHOOK_REQUIRE_SERVICES=1.
func TestPostgresRestart(t *testing.T) {
	const (
		emitters = 4
		subsN    = 2
		downFor  = 2 * time.Second // between the crash and the restart
		warmup   = 300             // deliveries before the crash
		after    = 300             // deliveries after the restart, before the emits stop
		loadFor  = time.Second     // emits after the deliveries resumed
	)
	// Duplicates are allowed (at least once): a delivery in flight at the
	// crash whose outcome could not be recorded is made again. They are
	// counted, not bounded.
	emitEvery := 5 * time.Millisecond // per emitter: about 800 events/s, 1,600 deliveries/s
	if clustertest.RaceEnabled() {
		emitEvery = 25 * time.Millisecond
	}
	srv := startPrivatePostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Cleanups run last first: the client stops, then the store and pool
	// close, then the server stops (registered by startPrivatePostgres).
	pcfg, err := pgxpool.ParseConfig(srv.url("postgres"))
	require.NoError(t, err)
	pcfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, postgres.Migrate(ctx, pool))
	store, err := postgres.NewStore(ctx, pool, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close() })
	q, err := postgres.NewQueue(pool, &postgres.QueueConfig{
		NodeID:         "restart",
		MaxWorkers:     restartWorkers,
		LeaseMargin:    time.Second,
		RescueInterval: 250 * time.Millisecond,
		Logger:         testLogger(),
	})
	require.NoError(t, err)
	rec := clustertest.NewReceiver()
	c, err := outhook.NewClient(&outhook.Config{
		Registry:   clustertest.NewRegistry(),
		Deliverers: []outhook.Deliverer{&restartDeliverer{rec: rec}},
		Store:      store,
		Queue:      q,
		// Short leases: a job whose completion was lost with the server is
		// taken back within seconds rather than after the one-minute
		// default.
		DeliveryTimeout: 3 * time.Second,
		HandlerTimeout:  3 * time.Second,
		Logger:          testLogger(),
	})
	require.NoError(t, err)
	require.NoError(t, c.Start(ctx))
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Stop(sctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	subs := make([]string, subsN)
	for i := range subs {
		s, err := c.CreateSubscription(ctx, outhook.Subscription{
			Name: fmt.Sprintf("restart %d", i+1), Events: []string{clustertest.EventID},
			DelivererID: clustertest.DelivererID, Config: json.RawMessage(`{}`),
		})
		require.NoError(t, err)
		subs[i] = s.ID
	}

	// The load: emitters that each emit an event every emitEvery, and try
	// an event whose emit failed again until it succeeds.
	var (
		next      atomic.Int64 // the next event number
		committed atomic.Int64
		stop      = make(chan struct{})
		abort     = make(chan struct{}) // the test failed: retry no more
		wg        sync.WaitGroup
		mu        sync.Mutex
		errTexts  = map[string]int{} // emit errors, by text
		retried   = map[int]int{}    // events whose emit failed, by failures
		gaveUp    []int              // events never committed
	)
	start := time.Now()
	for range emitters {
		wg.Go(func() {
			tick := time.NewTicker(emitEvery)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				n := int(next.Add(1) - 1)
				deadline := time.Now().Add(2 * time.Minute)
				for {
					ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
					err := outhook.EmitHook(ectx, c, clustertest.PingHook, clustertest.Ping{N: n})
					cancel()
					if err == nil {
						committed.Add(1)
						break
					}
					mu.Lock()
					errTexts[restartErrText(err)]++
					retried[n]++
					mu.Unlock()
					select {
					case <-time.After(50 * time.Millisecond): // the server is away: try again shortly
						if time.Now().Before(deadline) {
							continue
						}
					case <-abort:
					}
					mu.Lock()
					gaveUp = append(gaveUp, n)
					mu.Unlock()
					break
				}
			}
		})
	}
	var stopOnce sync.Once
	stopEmitters := func() {
		stopOnce.Do(func() {
			close(stop)
			wg.Wait()
		})
	}
	defer func() {
		if t.Failed() {
			close(abort)
		}
		stopEmitters()
	}()

	rec.Wait(t, time.Minute, "deliveries before the crash", func(unique, _ int, _ map[string]int) bool { return unique >= warmup })

	// The crash, the outage, the restart.
	_, beforeCrash := rec.Counts()
	emittedBefore := committed.Load()
	crashedAt := time.Since(start)
	down := time.Now()
	require.NoError(t, srv.crash(), "pg_ctl stop -m immediate")
	stopTook := time.Since(down)
	time.Sleep(downFor)
	restart := time.Now()
	require.NoError(t, srv.start(), "restart the server on port %d", srv.port)
	startTook := time.Since(restart)
	outage := time.Since(down)
	_, atRestart := rec.Counts()

	// The client finds the server again by itself, under load.
	resumed := time.Now()
	rec.Wait(t, 2*time.Minute, "deliveries after the restart", func(_, total int, _ map[string]int) bool { return total >= atRestart+after })
	resumeTook := time.Since(resumed)
	time.Sleep(loadFor)
	stopEmitters()
	emitting := time.Since(start)
	emits := int(next.Load())

	// Everything is delivered, and then nothing is left.
	never := map[int]bool{}
	for _, n := range gaveUp {
		never[n] = true
	}
	var wanted []string
	for n := range emits {
		if never[n] {
			continue
		}
		for _, s := range subs {
			wanted = append(wanted, clustertest.Key(s, n))
		}
	}
	drained := time.Now()
	// Every wanted key delivered makes at least len(wanted) distinct ones;
	// which keys they are is checked below.
	rec.Wait(t, 3*time.Minute, "every committed event's deliveries", func(unique, _ int, _ map[string]int) bool { return unique >= len(wanted) })
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	idleErr := c.WaitIdle(wctx)
	wcancel()
	drainTook := time.Since(drained)
	elapsed := time.Since(start)

	// The tally.
	unique, total := rec.Counts()
	dups := rec.Duplicated()
	retriedDups := 0 // duplicates of events whose failed emit had committed all the same
	for k := range dups {
		n, _ := strconv.Atoi(k[strings.LastIndexByte(k, '|')+1:])
		if retried[n] > 0 {
			retriedDups++
		}
	}
	var lost []string
	for _, k := range wanted {
		if !rec.Delivered(k) {
			lost = append(lost, k)
		}
	}
	failedEmits := 0
	for _, f := range retried {
		failedEmits += f
	}
	clustertest.Report("clustertest: postgres restart (PostgreSQL %s, private server at 127.0.0.1:%d): %d events × %d subscriptions emitted in %s by %d emitters (one every %s each); "+
		"server crashed (pg_ctl stop -m immediate, %s) at %s after %d deliveries and %d committed emits, down %s, restarted in %s (crash recovery): outage %s; "+
		"%d emit calls failed during it (%d events, all retried until committed, %d never); deliveries resumed %s after the restart (%d during the outage); "+
		"all done at %s (drained in %s); delivered %d, duplicated %d (%d from failed emits that had committed; the client runs up to %d deliveries at once), lost %d; emit errors: %s\n",
		srv.version, srv.port, emits, len(subs), emitting.Round(time.Millisecond), emitters, emitEvery,
		stopTook.Round(time.Millisecond), crashedAt.Round(time.Millisecond), beforeCrash, emittedBefore, downFor, startTook.Round(time.Millisecond), outage.Round(time.Millisecond),
		failedEmits, len(retried), len(gaveUp), resumeTook.Round(time.Millisecond), atRestart-beforeCrash,
		elapsed.Round(time.Millisecond), drainTook.Round(time.Millisecond), unique, total-unique, retriedDups, restartWorkers, len(lost), restartErrSummary(errTexts, 4))

	require.Empty(t, gaveUp, "events whose emit never succeeded, two minutes after the restart")
	require.Empty(t, lost, "deliveries of committed events never made (of %d)", len(wanted))
	require.NoError(t, idleErr, "the client drains")
	requireNothingLeft(t, ctx, c, q)
}

// restartWorkers is how many jobs of a group the restart test's client
// runs at once.
const restartWorkers = 20

// restartDeliverer records every delivery of the restart test.
type restartDeliverer struct{ rec *clustertest.Receiver }

func (d *restartDeliverer) ID() string { return clustertest.DelivererID }
func (d *restartDeliverer) ConfigSchema() json.RawMessage {
	return json.RawMessage(`{"type":"object"}`)
}
func (d *restartDeliverer) ValidateConfig(json.RawMessage) error { return nil }
func (d *restartDeliverer) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	var p clustertest.Ping
	if err := json.Unmarshal(req.Payload, &p); err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	// A destination that takes a moment, as a webhook's does.
	t := time.NewTimer(2 * time.Millisecond)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return outhook.DeliveryResult{}, ctx.Err()
	}
	d.rec.Record("client", clustertest.Key(req.Subscription.ID, p.N))
	return outhook.DeliveryResult{}, nil
}

// restartErrText is an emit error's text, with the numbers that vary from
// one error to the next (ports, PIDs, durations) left out, so that the
// same error is counted once.
func restartErrText(err error) string {
	s := err.Error()
	var b strings.Builder
	digits := false
	for _, r := range s {
		if r >= '0' && r <= '9' {
			if !digits {
				b.WriteByte('N')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteRune(r)
	}
	s = b.String()
	if len(s) > 240 { // the start says where, the end what
		s = s[:100] + " … " + s[len(s)-140:]
	}
	return s
}

func restartErrSummary(texts map[string]int, n int) string {
	if len(texts) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(texts))
	for k := range texts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return texts[keys[i]] > texts[keys[j]] })
	var parts []string
	for _, k := range keys[:min(n, len(keys))] {
		parts = append(parts, fmt.Sprintf("%d× %q", texts[k], k))
	}
	if len(keys) > n {
		parts = append(parts, fmt.Sprintf("and %d more kinds", len(keys)-n))
	}
	return strings.Join(parts, "; ")
}

// privatePostgres is a PostgreSQL server of the test's own, in a
// temporary directory, listening on 127.0.0.1 only (and on a Unix socket
// in its directory), which the test may crash and restart at will.
type privatePostgres struct {
	t       *testing.T
	bin     string // the directory of pg_ctl, initdb, postgres
	version string // PostgreSQL's major version, from bin's path
	dir     string // the server's directory: data, socket, log
	data    string
	port    int
	runAs   string // the user to run the server as, or "" for this process's
}

// startPrivatePostgres initializes and starts a private server, stopped
// (immediately) when the test ends, whatever happens to the test.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		restartMissing(t, "PostgreSQL's binaries are not installed (no /usr/lib/postgresql/*/bin/pg_ctl)")
	}
	// The newest major version.
	sort.Slice(bins, func(i, j int) bool { return restartMajor(bins[i]) > restartMajor(bins[j]) })
	p := &privatePostgres{t: t, bin: filepath.Dir(bins[0])}
	p.version = filepath.Base(filepath.Dir(p.bin))
	for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(p.bin, b)); err != nil {
			restartMissing(t, fmt.Sprintf("PostgreSQL's %s is missing from %s", b, p.bin))
		}
	}
	var uid, gid int = -1, -1
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			restartMissing(t, fmt.Sprintf("running as root, and there is no user postgres to run a private server as: %v", err))
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			restartMissing(t, "running as root, and runuser is missing: cannot run a private server as user postgres")
		}
		p.runAs = u.Username
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	// A directory of its own (t.TempDir's parent is private to root).
	dir, err := os.MkdirTemp("", "outhook-pg-restart-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if uid >= 0 {
		require.NoError(t, os.Chown(dir, uid, gid))
	}
	p.dir, p.data = dir, filepath.Join(dir, "data")

	if out, err := p.run(2*time.Minute, filepath.Join(p.bin, "initdb"), "-D", p.data, "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := restartFreePort(t)
	p.port = port
	// Durability against a crash of the server's processes needs the
	// kernel's page cache only: fsync off keeps the test fast.
	conf := fmt.Sprintf("\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"fsync = off\nfull_page_writes = off\nmax_connections = 60\nshared_buffers = 32MB\n", port, p.dir)
	f, err := os.OpenFile(filepath.Join(p.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(conf)
	require.NoError(t, errors.Join(err, f.Close()))

	// Stopped whatever happens from here on: the cleanup is registered
	// before the first start. And should this process die without its
	// cleanups (killed, or a -timeout panic), a watchdog stops the server:
	// a shell that waits for the end of a pipe only this process writes
	// to, then runs pg_ctl stop.
	r, w, err := os.Pipe()
	require.NoError(t, err)
	watchdog := p.command(context.Background(), "/bin/sh", "-c", `read line; exec "$0" stop -D "$1" -m immediate -w -t 60`,
		filepath.Join(p.bin, "pg_ctl"), p.data)
	watchdog.Stdin = r
	err = watchdog.Start()
	_ = r.Close()
	if err != nil {
		_ = w.Close()
		t.Fatalf("start the private server's watchdog: %v", err)
	}
	t.Cleanup(func() {
		_ = w.Close() // the watchdog stops the server now
		done := make(chan struct{})
		go func() { _ = watchdog.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			_ = watchdog.Process.Kill()
			<-done
		}
		p.stop() // in case the watchdog could not
	})
	require.NoError(t, p.start(), "start a private PostgreSQL server")
	return p
}

// command is a PostgreSQL program run as the server's user, in its
// directory.
func (p *privatePostgres) command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if p.runAs != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", p.runAs, "--", prog}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, prog, args...)
	}
	cmd.Dir = p.dir
	return cmd
}

// run runs a PostgreSQL program as the server's user, in its directory,
// and returns its output.
func (p *privatePostgres) run(timeout time.Duration, prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := p.command(ctx, prog, args...)
	// pg_ctl's server writes to its log file, never to our pipe; should
	// anything keep the pipe open, do not wait for it forever.
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// start starts the server on its port and returns once it accepts
// connections (after crash recovery, when it crashed).
func (p *privatePostgres) start() error {
	out, err := p.run(2*time.Minute, filepath.Join(p.bin, "pg_ctl"), "start", "-D", p.data, "-w", "-t", "90",
		"-l", filepath.Join(p.dir, "server.log"))
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s\nserver log:\n%s", err, out, p.logTail())
	}
	return nil
}

// crash stops the server the hard way: every server process quits at
// once, without a checkpoint, as in a crash.
func (p *privatePostgres) crash() error {
	out, err := p.run(time.Minute, filepath.Join(p.bin, "pg_ctl"), "stop", "-D", p.data, "-m", "immediate", "-w", "-t", "60")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// stop is the last cleanup: the server is stopped if it still runs, and
// killed if pg_ctl cannot stop it.
func (p *privatePostgres) stop() {
	pidFile := filepath.Join(p.data, "postmaster.pid")
	if _, err := os.Stat(pidFile); err != nil {
		return // not running
	}
	if err := p.crash(); err == nil {
		return
	} else {
		p.t.Logf("private PostgreSQL: %v; killing the postmaster", err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err == nil && pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL) // its backends exit when they see it gone
	}
}

func (p *privatePostgres) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

func (p *privatePostgres) logTail() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "server.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// restartMissing skips the test for want of what it needs, or fails it
// under OUTHOOK_REQUIRE_SERVICES=1 (as servicetest does for services).
func restartMissing(t *testing.T, msg string) {
	t.Helper()
	if servicetest.Required() {
		t.Fatalf("%s (%s=1: services are mandatory)", msg, servicetest.EnvRequire)
	}
	t.Skip(msg)
}

// restartMajor is the major version in a /usr/lib/postgresql/<v>/bin path.
func restartMajor(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

// restartFreePort returns a TCP port free on 127.0.0.1 a moment ago.
func restartFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return port
}
