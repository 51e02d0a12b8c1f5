package natsqueue_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/internal/servicetest"
	"github.com/outhook/outhook/natsqueue"
	"github.com/outhook/outhook/queue"
)

// server is a nats-server process of the test's own, with JetStream
// storing into a directory that outlives its restarts.
type server struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startServer(t *testing.T) *server {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if servicetest.Required() {
			t.Fatalf("nats-server is not on PATH, and %s=1 makes the reconnection test mandatory", servicetest.EnvRequire)
		}
		t.Skip("nats-server is not installed: skipping the reconnection test")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	s := &server{t: t, bin: bin, port: port, dir: t.TempDir()}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *server) url() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// start runs the server and waits until it accepts connections.
func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.dir)
	require.NoError(s.t, s.cmd.Start())
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.cmd, s.done)
	deadline := time.Now().Add(testTimeout)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.port), time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server on port %d did not come up: %v", s.port, err)
		}
		tick := time.NewTimer(20 * time.Millisecond) // polling the port with a deadline
		<-tick.C
	}
}

// kill kills the server process this test started, as a crash would.
func (s *server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// TestReconnect checks that the queue rides out a server crash: handlers
// running during the outage finish, jobs enqueued before and after it all
// run, and none is lost.
func TestReconnect(t *testing.T) {
	servicetest.NATSURL(t) // the test needs the NATS services like the others
	srv := startServer(t)
	reconnected := make(chan struct{}, 10)
	nc, err := nats.Connect(srv.url(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	logger, _ := testLogger()
	q, err := natsqueue.New(js, &natsqueue.Config{Stream: "RECONNECT", AckWait: 2 * time.Second, Logger: logger})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		require.NoError(t, q.Stop(ctx))
	})

	var mu sync.Mutex
	ran := map[string]int{}
	holding := make(chan struct{})
	release := make(chan struct{})
	require.NoError(t, q.Subscribe("g", func(_ context.Context, j *queue.Job) queue.Result {
		mu.Lock()
		ran[j.ID]++
		first := ran[j.ID] == 1
		mu.Unlock()
		if j.ID == "hold" && first {
			close(holding)
			<-release
		}
		return queue.Result{}
	}, queue.GroupOptions{}))
	require.NoError(t, q.Start(ctx(t)))

	var ids []string
	enqueue := func(prefix string) {
		for i := range 10 {
			id := fmt.Sprintf("%s-%d", prefix, i)
			ids = append(ids, id)
			require.NoError(t, q.Enqueue(ctx(t), &queue.Job{ID: id, Group: "g"}))
		}
	}
	require.NoError(t, q.Enqueue(ctx(t), &queue.Job{ID: "hold", Group: "g"}))
	ids = append(ids, "hold")
	<-holding
	enqueue("before")

	srv.kill()
	srv.start()
	close(release) // the held run ends while the connection may still be down
	select {
	case <-reconnected:
	case <-time.After(testTimeout):
		t.Fatal("the connection did not come back")
	}
	enqueue("after")
	require.NoError(t, q.WaitIdle(ctx(t)))

	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		require.GreaterOrEqual(t, ran[id], 1, "job %s was lost", id)
	}
	t.Logf("runs per job: %v", ran)
}
