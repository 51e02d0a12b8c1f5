package servicetest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/outhook/outhook/internal/servicetest"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPostgresSchemaIsPrivate(t *testing.T) {
	u, schema := servicetest.PostgresSchema(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE TABLE probe (id int)")
	require.NoError(t, err)
	var where string
	require.NoError(t, conn.QueryRow(ctx, "SELECT table_schema FROM information_schema.tables WHERE table_name = 'probe' AND table_schema = current_schema()").Scan(&where))
	require.Equal(t, schema, where)
}

func TestWithSearchPath(t *testing.T) {
	require.Equal(t, "postgres://h/db?search_path=s&sslmode=disable",
		servicetest.WithSearchPath("postgres://h/db?sslmode=disable", "s"))
	require.Equal(t, "host=h search_path=s", servicetest.WithSearchPath("host=h", "s"))
}
