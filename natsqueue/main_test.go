package natsqueue_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outhook/outhook/internal/clustertest"
	"github.com/outhook/outhook/internal/servicetest"
	"github.com/outhook/outhook/natsqueue"
	"github.com/outhook/outhook/queue"
)

func TestMain(m *testing.M) {
	if clustertest.IsChild() {
		// A crash proof's node in a process of its own (proof_test.go).
		clustertest.RunChild(proofParts(clustertest.Getenv(envProofNATS), clustertest.Getenv(envProofStream), clustertest.Getenv(envProofStore)))
	}
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait in the tests.
const testTimeout = 15 * time.Second

// syncBuffer is a bytes.Buffer safe for concurrent use, for log output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// crashConn is a NATS connection whose TCP socket a test can cut, as if
// the process had been killed.
type crashConn struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu   sync.Mutex
	sock net.Conn
}

func (c *crashConn) Dial(network, address string) (net.Conn, error) {
	sock, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial(network, address)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.sock = sock
	c.mu.Unlock()
	return sock, nil
}

// crash cuts the socket, so that nothing buffered reaches the server, then
// closes the connection, so that it never comes back.
func (c *crashConn) crash() {
	c.mu.Lock()
	if c.sock != nil {
		_ = c.sock.Close()
	}
	c.mu.Unlock()
	c.nc.Close()
}

// connect opens a connection to the test server, closed when the test ends.
func connect(t testing.TB, opts ...nats.Option) *crashConn {
	t.Helper()
	url := servicetest.NATSURL(t)
	c := &crashConn{}
	opts = append([]nats.Option{nats.SetCustomDialer(c), nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(url, opts...)
	require.NoError(t, err, "connect to NATS at %s", url)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	c.nc, c.js = nc, js
	return c
}

// newStream returns a stream name of the test's own, whose streams and
// bucket are deleted when the test ends.
func newStream(t testing.TB) string {
	t.Helper()
	name := servicetest.Name("NQ")
	admin := connect(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		for _, s := range []string{name, name + "_DEAD", name + "_BCAST"} {
			if err := admin.js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("delete stream %s: %v", s, err)
			}
		}
		if err := admin.js.DeleteKeyValue(ctx, name+"_LEDGER"); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			t.Errorf("delete bucket %s_LEDGER: %v", name, err)
		}
	})
	return name
}

// newQueue returns an unstarted queue on its own connection, stopped when
// the test ends. cfg.Stream must be set; short leases and a quiet logger
// are filled in.
func newQueue(t testing.TB, cfg natsqueue.Config) (*natsqueue.Queue, *crashConn) {
	t.Helper()
	conn := connect(t)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = 2 * time.Second
	}
	if cfg.AckMargin == 0 {
		cfg.AckMargin = 500 * time.Millisecond
	}
	q, err := natsqueue.New(conn.js, &cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := q.Stop(ctx); err != nil {
			t.Errorf("Stop at cleanup: %v", err)
		}
	})
	return q, conn
}

// ctx returns a context that ends after testTimeout or with the test.
func ctx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return c
}

func start(t testing.TB, q *natsqueue.Queue) {
	t.Helper()
	require.NoError(t, q.Start(ctx(t)))
}

func waitIdle(t testing.TB, q *natsqueue.Queue) {
	t.Helper()
	require.NoError(t, q.WaitIdle(ctx(t)), "WaitIdle")
}

// run is a copy of the job a handler saw, and when it was called.
type run struct {
	queue.Job
	At time.Time
}

// runs records the jobs handlers see, and signals each run.
type runs struct {
	mu   sync.Mutex
	jobs []run
	ch   chan run
}

func newRuns() *runs { return &runs{ch: make(chan run, 1000)} }

func (r *runs) add(j *queue.Job) {
	c := run{Job: *j, At: time.Now()}
	c.Payload = bytes.Clone(j.Payload)
	c.Errors = append([]queue.AttemptError(nil), j.Errors...)
	r.mu.Lock()
	r.jobs = append(r.jobs, c)
	r.mu.Unlock()
	r.ch <- c
}

func (r *runs) all() []run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]run(nil), r.jobs...)
}

func (r *runs) of(id string) []run {
	var out []run
	for _, j := range r.all() {
		if j.ID == id {
			out = append(out, j)
		}
	}
	return out
}

// next waits for the next run.
func (r *runs) next(t testing.TB) run {
	t.Helper()
	timer := time.NewTimer(testTimeout)
	defer timer.Stop()
	select {
	case j := <-r.ch:
		return j
	case <-timer.C:
		t.Fatal("timed out waiting for a run")
		panic("unreachable")
	}
}

// waitDead polls Dead until a job with id is listed.
func waitDead(t testing.TB, q *natsqueue.Queue, id string) *queue.Job {
	t.Helper()
	deadline := time.NewTimer(testTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		jobs, err := q.Dead(ctx(t), 100)
		require.NoError(t, err)
		for _, j := range jobs {
			if j.ID == id {
				return j
			}
		}
		select {
		case <-tick.C: // poll the server again
		case <-deadline.C:
			t.Fatalf("job %s never appeared in Dead", id)
		}
	}
}
