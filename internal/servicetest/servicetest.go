// Package servicetest gives the tests of outhook's durable backends their
// services: the URLs of Postgres and NATS, and a private schema or name
// prefix per test so that runs never collide.
//
// A test that needs a service calls PostgresURL or NATSURL. When the
// variable naming the service (OUTHOOK_POSTGRES_URL, OUTHOOK_NATS_URL) is
// unset, the test is skipped with a message, so `go test ./...` passes on a
// machine without the services; when OUTHOOK_REQUIRE_SERVICES=1 (as .ci/run
// sets it), a missing variable or an unreachable service fails the test
// instead.
package servicetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables read by this package.
const (
	EnvPostgres = "OUTHOOK_POSTGRES_URL"
	EnvNATS     = "OUTHOOK_NATS_URL"
	EnvRequire  = "OUTHOOK_REQUIRE_SERVICES"
)

// Required reports whether missing services fail tests instead of skipping
// them.
func Required() bool { return os.Getenv(EnvRequire) == "1" }

func missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		tb.Fatalf("%s (%s=1: services are mandatory)", msg, EnvRequire)
	}
	tb.Skip(msg)
}

// PostgresURL returns the Postgres URL from OUTHOOK_POSTGRES_URL, after
// checking that the server answers.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvPostgres)
	if u == "" {
		missing(tb, "%s is not set: skipping a test that needs Postgres "+
			"(for example %s=postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", EnvPostgres, EnvPostgres)
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		missing(tb, "Postgres at %s=%s does not answer: %v", EnvPostgres, redactURL(u), err)
		return ""
	}
	_ = conn.Close(ctx)
	return u
}

// NATSURL returns the NATS URL from OUTHOOK_NATS_URL, after checking that
// something listens at its address.
func NATSURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(EnvNATS)
	if u == "" {
		missing(tb, "%s is not set: skipping a test that needs NATS JetStream "+
			"(for example %s=nats://127.0.0.1:4222)", EnvNATS, EnvNATS)
		return ""
	}
	host := u
	if pu, err := url.Parse(u); err == nil && pu.Host != "" {
		host = pu.Host
	}
	if !strings.Contains(host, ":") {
		host += ":4222"
	}
	conn, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		missing(tb, "NATS at %s=%s does not answer: %v", EnvNATS, u, err)
		return ""
	}
	_ = conn.Close()
	return u
}

// Name returns a name unique to this run, "<prefix>_<16 hex digits>", that
// is a valid Postgres identifier and NATS stream name when prefix is.
func Name(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// PostgresSchema creates a schema of its own for the test, drops it when the
// test ends, and returns the URL with search_path set to it: everything a
// backend creates through that URL, River's tables included, lands there.
func PostgresSchema(tb testing.TB) (schemaURL, schema string) {
	tb.Helper()
	base := PostgresURL(tb)
	schema = Name("outhook_test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("servicetest: connect to Postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		tb.Fatalf("servicetest: create schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("servicetest: connect to drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("servicetest: drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(base, schema), schema
}

// WithSearchPath returns a Postgres URL whose connections use schema as
// their search_path (pgx passes unknown URL parameters to the server as
// run-time parameters).
func WithSearchPath(pgURL, schema string) string {
	u, err := url.Parse(pgURL)
	if err != nil || u.Scheme == "" {
		// A key=value connection string.
		return pgURL + " search_path=" + schema
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
