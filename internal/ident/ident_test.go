package ident

import (
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		id, why string
	}{
		{"incident.created", ""},
		{"healthcheck-http.state.changed", ""},
		{"a_b-C9", ""},
		{"", "is empty"},
		{".a", "has an empty segment at byte 0"},
		{"a..b", "has an empty segment at byte 2"},
		{"a.", "ends with '.'"},
		{"a b", `has invalid character ' ' at byte 1 (allowed: letters, digits, '_', '-' and '.' between segments)`},
		{"a/b", `has invalid character '/' at byte 1 (allowed: letters, digits, '_', '-' and '.' between segments)`},
		{"incident.*", `has invalid character '*' at byte 9 (allowed: letters, digits, '_', '-' and '.' between segments)`},
	} {
		require.Equal(t, tc.why, Check(tc.id), tc.id)
	}
}

func TestPattern(t *testing.T) {
	require.Empty(t, CheckPattern("incident.*"))
	require.Empty(t, CheckPattern("incident.**"))
	require.Empty(t, CheckPattern("*.*.created"))
	require.Empty(t, CheckPattern("**"))
	require.NotEmpty(t, CheckPattern("**.created"))
	require.NotEmpty(t, CheckPattern("inc*.created"))
	require.NotEmpty(t, CheckPattern(""))
	require.NotEmpty(t, CheckPattern("a..b"))

	for _, tc := range []struct {
		p, id string
		want  bool
	}{
		{"incident.incident.created", "incident.incident.created", true},
		{"incident.incident.created", "incident.incident.updated", false},
		{"incident.*", "incident.started", true},
		{"incident.*", "incident.incident.created", false},
		{"incident.*.*", "incident.incident.created", true},
		{"incident.**", "incident.incident.created", true},
		{"incident.**", "incident.x", true},
		{"incident.**", "incident", false},
		{"incident.**", "incidents.x", false},
		{"*.*.created", "incident.incident.created", true},
		{"*", "a", true},
		{"*", "a.b", false},
		{"**", "a.b.c", true},
		{"a.b", "a", false},
		{"a", "a.b", false},
	} {
		require.Equal(t, tc.want, Match(tc.p, tc.id), "%s ~ %s", tc.p, tc.id)
	}
}

func TestNewSortsByTime(t *testing.T) {
	base := time.UnixMilli(1_700_000_000_000)
	var ids []string
	for i := range 100 {
		ids = append(ids, New("msg_", base.Add(time.Duration(i)*time.Millisecond)))
	}
	require.True(t, sort.StringsAreSorted(ids))
	require.Len(t, ids[0], len("msg_")+26)
	require.NotEqual(t, New("x", base), New("x", base))
}

func TestDerive(t *testing.T) {
	a := Derive("dlv_", "msg_1", "sub_1")
	require.Equal(t, a, Derive("dlv_", "msg_1", "sub_1"))
	require.NotEqual(t, a, Derive("dlv_", "msg_1", "sub_2"))
	require.NotEqual(t, Derive("", "ab", "c"), Derive("", "a", "bc"))
	require.Len(t, a, len("dlv_")+26)
}

func BenchmarkNew(b *testing.B) {
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_ = New("msg_", now)
	}
}

func BenchmarkDerive(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Derive("dlv_", "msg_01JD7Y3Q8ZB2W4N6XK5T0M9R1C", "incident.incident.created", "sub_01JD7Y3Q8ZB2W4N6XK5T0M9R1D")
	}
}
