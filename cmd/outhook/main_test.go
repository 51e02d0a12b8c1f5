package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait of these tests.
const waitTimeout = 10 * time.Second

// result is what a command line did.
type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs the command line args with stdin and the environment env.
func runCmd(t *testing.T, stdin string, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr, func(k string) string { return env[k] })
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// syncBuffer is an output a command writes to while the test reads it.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // signalled after each write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	n, err := s.b.Write(p)
	s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the output contains want, or done is closed, or the
// wait times out, and returns the output.
func (s *syncBuffer) waitFor(t *testing.T, want string, done <-chan struct{}) string {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		if out := s.String(); strings.Contains(out, want) {
			return out
		}
		select {
		case <-s.wrote:
		case <-done:
			if out := s.String(); strings.Contains(out, want) {
				return out
			}
			t.Fatalf("the command ended before writing %q; output:\n%s", want, s.String())
		case <-timer.C:
			t.Fatalf("no %q in the output after %s; output:\n%s", want, waitTimeout, s.String())
		}
	}
}

// commands returns the command paths of the tree under c, c included.
func commands(c *cobra.Command, parent []string) [][]string {
	path := append(parent[:len(parent):len(parent)], c.Name())
	out := [][]string{path}
	for _, sub := range c.Commands() {
		out = append(out, commands(sub, path)...)
	}
	return out
}

func TestHelpOfEveryCommand(t *testing.T) {
	root := newRootCmd(nil, nil, nil, nil)
	paths := commands(root, nil)
	require.GreaterOrEqual(t, len(paths), 15, "the tree: %v", paths)
	for _, path := range paths {
		args := path[1:] // without "outhook"
		t.Run(strings.Join(path, " "), func(t *testing.T) {
			cmd, _, err := root.Find(args)
			require.NoError(t, err)
			require.NotEmpty(t, cmd.Short, "Short")
			require.NotEmpty(t, cmd.Long, "Long")
			require.NotEmpty(t, cmd.Example, "Example")

			r := runCmd(t, "", nil, append(args, "--help")...)
			require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
			require.Contains(t, r.stdout, "Usage:")
			require.Contains(t, r.stdout, strings.Join(path, " "))
			require.Contains(t, r.stdout, "Examples:")
			require.Empty(t, r.stderr)
		})
	}
}

func TestRootHelpDocumentsExitCodes(t *testing.T) {
	r := runCmd(t, "", nil)
	require.Equal(t, 0, r.code)
	for _, want := range []string{"Exit codes:", "0  success", "1  the operation ran and failed", "2  usage error", "OUTHOOK_ADMIN_URL", "OUTHOOK_TOKEN"} {
		require.Contains(t, r.stdout, want)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"admin", "bogus"},
		{"secret", "bogus"},
		{"listen", "--bogus"},
		{"listen", "extra"},
		{"listen", "--port", "x"},
		{"verify", "extra", "--secret", "whsec_x"},
		{"secret", "new", "--type", "v2"},
		{"admin", "deliveries", "get"},
		{"admin", "subscriptions", "get", "a", "b"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCmd(t, "", nil, args...)
			require.Equal(t, 2, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
			require.Empty(t, r.stdout)
			require.True(t, strings.HasPrefix(r.stderr, "outhook: "), "stderr: %q", r.stderr)
			require.Contains(t, r.stderr, "--help")
			require.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
		})
	}
}

func TestGroupWithoutSubcommandPrintsHelp(t *testing.T) {
	r := runCmd(t, "", nil, "admin")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "Available Commands:")
	require.Contains(t, r.stdout, "deliveries")
}
