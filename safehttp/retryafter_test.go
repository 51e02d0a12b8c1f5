package safehttp

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		value string
		want  time.Duration
		ok    bool
	}{
		{"seconds", "120", 2 * time.Minute, true},
		{"zero", "0", 0, true},
		{"spaces", " 5\t", 5 * time.Second, true},
		{"leading zeros", "007", 7 * time.Second, true},
		{"30 days", "2592000", 30 * 24 * time.Hour, true},
		{"over 30 days", "2592001", 0, false},
		{"overflow", "99999999999999999999999", 0, false},
		{"negative", "-1", 0, false},
		{"plus", "+5", 0, false},
		{"fraction", "1.5", 0, false},
		{"garbage", "abc", 0, false},
		{"empty", "", 0, false},
		{"blank", "   ", 0, false},
		{"IMF-fixdate future", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"IMF-fixdate past", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"IMF-fixdate now", now.Format(http.TimeFormat), 0, true},
		{"RFC 850", now.Add(time.Hour).Format(time.RFC850), time.Hour, true},
		{"RFC 850 literal", "Sunday, 01-Mar-26 12:10:00 GMT", 10 * time.Minute, true},
		{"asctime", now.Add(2 * time.Hour).Format(time.ANSIC), 2 * time.Hour, true},
		{"asctime literal", "Sun Mar  1 12:00:30 2026", 30 * time.Second, true},
		{"date over 30 days", now.Add(31 * 24 * time.Hour).Format(http.TimeFormat), 0, false},
		{"date far past", "Mon, 01 Jan 0001 00:00:00 GMT", 0, true},
		{"not GMT", "Sun, 01 Mar 2026 12:00:30 PST", 0, false},
		{"half a date", "Sun, 01 Mar 2026", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := RetryAfter(tc.value, now)
			require.Equal(t, tc.ok, ok, tc.value)
			require.Equal(t, tc.want, got, tc.value)
		})
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "0", "-1", "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, value string) {
		d, ok := RetryAfter(value, now)
		if d < 0 || d > MaxRetryAfter {
			t.Fatalf("RetryAfter(%q) = %v, %v", value, d, ok)
		}
		if !ok && d != 0 {
			t.Fatalf("RetryAfter(%q) = %v, false", value, d)
		}
	})
}
