package outhook_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCoreStaysLight keeps databases and brokers out of the core: importing
// the root package (or the queue contract, the in-memory queue, the test kit,
// a deliverer, the admin API and console, or the CLI) must not build pgx,
// River, SQLite, NATS or the browser driver into a program.
// The durable backends live in packages of their own (postgres, sqlite,
// natsqueue, riverqueue).
func TestCoreStaysLight(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	heavy := []string{
		"github.com/jackc/pgx",
		"github.com/riverqueue/",
		"modernc.org/sqlite",
		"github.com/nats-io/",
		"database/sql",
		"github.com/chromedp/", // the console's browser tests only
	}
	pkgs := []string{
		"github.com/outhook/outhook",
		"github.com/outhook/outhook/queue",
		"github.com/outhook/outhook/memqueue",
		"github.com/outhook/outhook/outhooktest",
		"github.com/outhook/outhook/webhook",
		"github.com/outhook/outhook/slack",
		"github.com/outhook/outhook/pagerduty",
		"github.com/outhook/outhook/teams",
		"github.com/outhook/outhook/discord",
		"github.com/outhook/outhook/jira",
		"github.com/outhook/outhook/adminhttp",
		"github.com/outhook/outhook/adminui",
		"github.com/outhook/outhook/cmd/outhook",
	}
	out, err := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...).CombinedOutput()
	require.NoError(t, err, "go list: %s", out)
	for _, dep := range strings.Fields(string(out)) {
		for _, h := range heavy {
			require.False(t, strings.HasPrefix(dep, h), "a core package pulls in %s", dep)
		}
	}
}
