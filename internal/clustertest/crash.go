package clustertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/outhook/outhook"
)

// Environment of a crash proof's child process.
const (
	envChild    = "OUTHOOK_CLUSTERTEST_CHILD"
	envReceiver = "OUTHOOK_CLUSTERTEST_RECEIVER"
	envEmit     = "OUTHOOK_CLUSTERTEST_EMIT"
	envWorkers  = "OUTHOOK_CLUSTERTEST_WORKERS"
	envTimeout  = "OUTHOOK_CLUSTERTEST_TIMEOUT"
	envDelay    = "OUTHOOK_CLUSTERTEST_DELAY"
)

// IsChild reports whether this process is a crash proof's child node. A
// backend's TestMain calls RunChild when it is.
func IsChild() bool { return os.Getenv(envChild) != "" }

// RunChild runs this process as a crash proof's child node until it is
// killed (SIGKILL, the proof) or asked to stop (SIGTERM, a clean end). It
// reports every delivery to the parent's receiver over HTTP, and, when
// asked, emits the events itself. It exits the process.
func RunChild(newParts NewParts) {
	name := os.Getenv(envChild)
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "clustertest child %s: %s\n", name, fmt.Sprintf(format, args...))
		os.Exit(2)
	}
	workers, _ := strconv.Atoi(os.Getenv(envWorkers))
	timeout, err := time.ParseDuration(os.Getenv(envTimeout))
	if err != nil {
		fail("bad %s: %v", envTimeout, err)
	}
	delay, _ := time.ParseDuration(os.Getenv(envDelay))
	ctx := context.Background()
	parts, err := newParts(ctx, NodeConfig{Name: name, DeliveryTimeout: timeout, Workers: workers})
	if err != nil {
		fail("parts: %v", err)
	}
	dl := &poster{node: name, url: os.Getenv(envReceiver), delay: delay, client: &http.Client{}}
	c, err := outhook.NewClient(&outhook.Config{
		Registry:        NewRegistry(),
		Deliverers:      []outhook.Deliverer{dl},
		Store:           parts.Store,
		Queue:           parts.Queue,
		DeliveryTimeout: timeout,
		HandlerTimeout:  timeout,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		fail("NewClient: %v", err)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	if err := c.Start(ctx); err != nil {
		fail("Start: %v", err)
	}
	fmt.Println("ready")
	if n, _ := strconv.Atoi(os.Getenv(envEmit)); n > 0 {
		for i := 0; i < n; i++ {
			if err := outhook.EmitHook(ctx, c, PingHook, Ping{N: i}); err != nil {
				fail("emit %d: %v", i, err)
			}
		}
		fmt.Println("emitted")
	}
	<-term
	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := c.Stop(stopCtx); err != nil {
		fail("Stop: %v", err)
	}
	if parts.Close != nil {
		parts.Close()
	}
	os.Exit(0)
}

// poster is the child's deliverer: it reports each delivery to the
// parent's receiver.
type poster struct {
	node   string
	url    string
	delay  time.Duration
	client *http.Client
}

type deliveryReport struct {
	Node string `json:"node"`
	Key  string `json:"key"`
}

func (d *poster) ID() string                           { return DelivererID }
func (d *poster) ConfigSchema() json.RawMessage        { return json.RawMessage(`{"type":"object"}`) }
func (d *poster) ValidateConfig(json.RawMessage) error { return nil }
func (d *poster) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	var p Ping
	if err := json.Unmarshal(req.Payload, &p); err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	if d.delay > 0 {
		t := time.NewTimer(d.delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return outhook.DeliveryResult{}, ctx.Err()
		}
	}
	body, _ := json.Marshal(deliveryReport{Node: d.node, Key: Key(req.Subscription.ID, p.N)})
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return outhook.DeliveryResult{}, outhook.Permanent(err)
	}
	res, err := d.client.Do(hreq)
	if err != nil {
		return outhook.DeliveryResult{}, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		return outhook.DeliveryResult{}, fmt.Errorf("receiver answered %s", res.Status)
	}
	return outhook.DeliveryResult{}, nil
}

// CrashOptions configures Crash.
type CrashOptions struct {
	// NewParts builds a node; the child process calls it too (through
	// RunChild in the backend's TestMain), so it must read what it needs
	// from the environment (ChildEnv).
	NewParts NewParts
	// ChildEnv is added to the child's environment: where the shared
	// backend is.
	ChildEnv []string
	// Events is how many events are emitted. Default 1,000 (a tenth under
	// the race detector).
	Events int
	// Workers is how many jobs of one group the child runs at once: what
	// may be in flight at the kill, and so the bound on duplicates.
	// Default 8.
	Workers int
	// DeliveryTimeout is the nodes' delivery and handler timeout: jobs of
	// the killed node come back after about this plus the backend's lease
	// margin. (With the default one-minute handler timeout, the events the
	// killed node was routing would wait a minute for their lease.)
	// Default 2 s.
	DeliveryTimeout time.Duration
	// Restart selects the single-node form (SQLite): the child emits the
	// events itself, is killed, and a second child process finishes the
	// work. Otherwise a node in the test's own process shares the work
	// with the child, emits the events, and finishes after the kill.
	Restart bool
}

// Crash is the crash proof: a node in a separate OS process is killed with
// SIGKILL in the middle of its deliveries; every event must still be
// delivered to both subscriptions (lost = 0), and duplicates are bounded
// by what the killed node had in flight. It prints delivered, duplicated
// and lost counts.
func Crash(t *testing.T, o CrashOptions) {
	t.Helper()
	if o.Events == 0 {
		o.Events = 1000
	}
	o.Events = scaled(o.Events)
	if o.Workers == 0 {
		o.Workers = 8
	}
	if o.DeliveryTimeout == 0 {
		o.DeliveryTimeout = 2 * time.Second
	}
	rec := NewReceiver()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rep deliveryReport
		if err := json.NewDecoder(r.Body).Decode(&rep); err != nil || rep.Key == "" {
			http.Error(w, "bad report", http.StatusBadRequest)
			return
		}
		rec.Record(rep.Node, rep.Key)
		w.WriteHeader(http.StatusNoContent)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "http://" + ln.Addr().String() + "/"

	ctx := context.Background()
	var parent *outhook.Client
	var subs []string
	var backend string
	if o.Restart {
		// Create the subscriptions, then leave the backend to the children.
		parts, err := o.NewParts(ctx, NodeConfig{Name: "setup", DeliveryTimeout: o.DeliveryTimeout, Workers: o.Workers})
		if err != nil {
			t.Fatalf("clustertest: setup node: %v", err)
		}
		c, err := outhook.NewClient(&outhook.Config{Registry: NewRegistry(), Deliverers: []outhook.Deliverer{&recorder{rec: rec}},
			Store: parts.Store, Queue: parts.Queue, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		subs = subscribe(t, c, 2)
		backend = backendName(parts)
		stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
		err = c.Stop(stopCtx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if parts.Close != nil {
			parts.Close()
		}
	} else {
		parts, err := o.NewParts(ctx, NodeConfig{Name: "parent", DeliveryTimeout: o.DeliveryTimeout, Workers: o.Workers})
		if err != nil {
			t.Fatalf("clustertest: parent node: %v", err)
		}
		backend = backendName(parts)
		parent = newClient(t, parts, &recorder{node: "parent", rec: rec, delay: 2 * time.Millisecond}, o.DeliveryTimeout)
		subs = subscribe(t, parent, 2)
	}
	want := o.Events * len(subs)

	emit := 0
	if o.Restart {
		emit = o.Events
	}
	start := time.Now()
	child := startChild(t, "child", url, emit, o)
	if o.Restart {
		child.waitLine(t, "emitted")
	} else {
		emitAll(t, []*outhook.Client{parent}, o.Events)
	}
	// Kill the child in the middle of its deliveries.
	rec.Wait(t, 2*time.Minute, "the child's first deliveries", func(unique, _ int, byNode map[string]int) bool {
		return byNode["child"] >= want/20 || unique >= want
	})
	killedAt := time.Since(start)
	childBefore := rec.ByNode()["child"]
	uniqueAtKill, _ := rec.Counts()
	child.kill(t)
	if uniqueAtKill >= want {
		t.Fatalf("clustertest: everything was delivered before the kill; the proof needs a slower child")
	}

	var finisher *childProc
	if o.Restart {
		finisher = startChild(t, "restarted", url, 0, o)
	}
	rec.Wait(t, 3*time.Minute, fmt.Sprintf("all %d deliveries after the kill", want), func(unique, _ int, _ map[string]int) bool { return unique >= want })
	if o.Restart {
		finisher.stop(t)
	} else {
		waitIdle(t, parent)
	}
	unique, total := rec.Counts()
	dups := total - unique
	report("clustertest: crash (%s): %d events × %d subscriptions; child killed at %s after %d of its deliveries (%d of %d done in all); all done at %s; delivered %d, duplicated %d (bound %d in flight), lost %d; split: %s\n",
		backend, o.Events, len(subs), killedAt.Round(time.Millisecond), childBefore, uniqueAtKill, want, time.Since(start).Round(time.Millisecond),
		unique, dups, o.Workers, want-unique, splitString(rec.ByNode()))
	if unique != want {
		t.Fatalf("clustertest: lost %d deliveries", want-unique)
	}
	if dups > o.Workers {
		t.Fatalf("clustertest: %d duplicates, more than the %d deliveries the killed node could have had in flight: %v",
			dups, o.Workers, firstN(rec.Duplicated(), 10))
	}
}

type childProc struct {
	name  string
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
	mu    sync.Mutex
	err   error
}

func startChild(t *testing.T, name, url string, emit int, o CrashOptions) *childProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		envChild+"="+name,
		envReceiver+"="+url,
		envEmit+"="+strconv.Itoa(emit),
		envWorkers+"="+strconv.Itoa(o.Workers),
		envTimeout+"="+o.DeliveryTimeout.String(),
		envDelay+"=3ms",
	)
	cmd.Env = append(cmd.Env, o.ChildEnv...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("clustertest: start child %s: %v", name, err)
	}
	p := &childProc{name: name, cmd: cmd, lines: make(chan string, 16), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	p.waitLine(t, "ready")
	return p
}

func (p *childProc) waitLine(t *testing.T, want string) {
	t.Helper()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for {
		select {
		case l := <-p.lines:
			if l == want {
				return
			}
		case <-p.done:
			t.Fatalf("clustertest: child %s exited before printing %q: %v", p.name, want, p.err)
		case <-deadline.C:
			t.Fatalf("clustertest: child %s did not print %q", p.name, want)
		}
	}
}

func (p *childProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("clustertest: kill child %s: %v", p.name, err)
	}
	<-p.done
}

func (p *childProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("clustertest: stop child %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("clustertest: child %s did not stop", p.name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		t.Fatalf("clustertest: child %s ended badly: %v", p.name, p.err)
	}
}
