package sqlstore

import (
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"time"
)

type dialectKind int

const (
	kindPostgres dialectKind = iota + 1
	kindSQLite
)

// Dialect is what differs between the databases the store runs on:
// placeholders, how times are kept, the DDL of the migrations and how
// Migrate serialises concurrent runs. Build one with Postgres or SQLite.
//
// What the dialects keep alike: both run the same statements (ON CONFLICT
// DO NOTHING for idempotent inserts, RETURNING, LIMIT), bind JSON documents
// as text and booleans as Go bools.
type Dialect struct {
	// Name names the database in errors: "postgres", "sqlite".
	Name string
	// MigrateCall is the call that creates or updates the tables, which
	// the error of Check tells the user to run, e.g.
	// "postgres.Migrate(ctx, pool)".
	MigrateCall string

	kind dialectKind
}

// Postgres is the dialect of PostgreSQL (12 or later), through
// github.com/jackc/pgx/v5/stdlib. Times are timestamptz (microseconds),
// JSON documents json (kept byte for byte) or jsonb (structure only).
func Postgres() Dialect {
	return Dialect{Name: "postgres", MigrateCall: "postgres.Migrate(ctx, pool)", kind: kindPostgres}
}

// SQLite is the dialect of SQLite (3.37 or later: STRICT tables), through
// modernc.org/sqlite. Times are INTEGER microseconds since the Unix epoch,
// UTC; JSON documents TEXT.
func SQLite() Dialect {
	return Dialect{Name: "sqlite", MigrateCall: "sqlite.Migrate(ctx, db)", kind: kindSQLite}
}

func (d Dialect) valid() error {
	if d.kind != kindPostgres && d.kind != kindSQLite {
		return fmt.Errorf("outhook: sqlstore: unknown dialect %q: use sqlstore.Postgres() or sqlstore.SQLite()", d.Name)
	}
	return nil
}

// rebind turns the '?' placeholders of q into the dialect's. The statements
// of this package contain no other question marks.
func (d Dialect) rebind(q string) string {
	if d.kind != kindPostgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

// timeArg is the value bound for t: the time in UTC, truncated to the
// microsecond (both databases keep microseconds; truncating here rather
// than in the database makes them agree on ties).
//
// Times outside the years 1 to 9999 (UTC) bind as a value that fails with
// an error saying so, rather than overflowing SQLite's integer or reaching
// Postgres's limits.
func (d Dialect) timeArg(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if y := t.Year(); y < 1 || y > 9999 {
		return timeOutOfRange(t)
	}
	if d.kind == kindSQLite {
		return t.UnixMicro()
	}
	return t
}

// timeOutOfRange fails to bind, with an error that names the time.
type timeOutOfRange time.Time

func (t timeOutOfRange) Value() (driver.Value, error) {
	return nil, fmt.Errorf("time %s is outside the years 1 to 9999 that outhook stores", time.Time(t).Format(time.RFC3339Nano))
}

// nullTimeArg is timeArg, or NULL for the zero time.
func (d Dialect) nullTimeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.timeArg(t)
}

// timeDest scans a time column of either dialect into *t: a time.Time
// (Postgres), an integer of microseconds (SQLite) or NULL (the zero time).
// Times come back in UTC.
type timeDest struct{ t *time.Time }

func (s timeDest) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*s.t = time.Time{}
	case time.Time:
		*s.t = v.UTC()
	case int64:
		*s.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("cannot read a time from a %T", v)
	}
	return nil
}

var _ interface{ Scan(any) error } = timeDest{}
