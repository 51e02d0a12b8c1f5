package safehttp

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter is the longest wait RetryAfter accepts; a longer one is
// treated as garbage.
const MaxRetryAfter = 30 * 24 * time.Hour

// RetryAfter parses a Retry-After header value (RFC 9110 §10.2.3) at now:
// delta-seconds ("120") or an HTTP-date in any of the three formats
// http.ParseTime accepts (IMF-fixdate, RFC 850, asctime). It returns false
// for an empty, negative, malformed or absurd (more than MaxRetryAfter)
// value. A date in the past gives 0, true. The result is never negative.
func RetryAfter(value string, now time.Time) (time.Duration, bool) {
	v := strings.Trim(value, " \t")
	if v == "" {
		return 0, false
	}
	if allDigits(v) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(MaxRetryAfter/time.Second) {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	switch {
	case d <= 0:
		return 0, true
	case d > MaxRetryAfter:
		return 0, false
	}
	return d, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
