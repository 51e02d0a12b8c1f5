package httpoutcome

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/safehttp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFromResponse(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	req, err := http.NewRequest(http.MethodPost, "https://example.com/hook?token=SECRET", nil)
	require.NoError(t, err)
	type want struct {
		ok, permanent, gone bool
		retryAfter          time.Duration
	}
	for _, tc := range []struct {
		code       int
		retryAfter string
		policy     Policy
		want       want
	}{
		{200, "", Policy{}, want{ok: true}},
		{202, "", Policy{}, want{ok: true}},
		{204, "", Policy{}, want{ok: true}},
		{301, "", Policy{}, want{permanent: true}},
		{302, "", Policy{}, want{permanent: true}},
		{400, "", Policy{}, want{permanent: true}},
		{401, "", Policy{}, want{permanent: true}},
		{404, "", Policy{}, want{permanent: true}},
		{404, "", Policy{Gone: []int{404}}, want{permanent: true, gone: true}},
		{408, "", Policy{Retry: []int{408}}, want{}},
		{410, "", Policy{}, want{permanent: true, gone: true}},
		{429, "", Policy{}, want{}},
		{429, "120", Policy{}, want{retryAfter: 2 * time.Minute}},
		{429, now.Add(90 * time.Second).Format(http.TimeFormat), Policy{}, want{retryAfter: 90 * time.Second}},
		{500, "", Policy{}, want{}},
		{501, "", Policy{}, want{permanent: true}},
		{502, "", Policy{}, want{}},
		{503, "30", Policy{}, want{retryAfter: 30 * time.Second}},
		{504, "", Policy{}, want{}},
		{500, "30", Policy{}, want{}}, // Retry-After counts only where it means something
	} {
		resp := &safehttp.Response{StatusCode: tc.code, Status: http.StatusText(tc.code), Header: http.Header{}, Body: []byte("body")}
		if tc.retryAfter != "" {
			resp.Header.Set("Retry-After", tc.retryAfter)
		}
		tc.policy.Now = func() time.Time { return now }
		res, err := FromResponse(req, resp, tc.policy)
		name := http.StatusText(tc.code)
		require.Equal(t, tc.code, res.StatusCode, name)
		require.Equal(t, "body", res.Response, name)
		if tc.want.ok {
			require.NoError(t, err, name)
			continue
		}
		require.Error(t, err, name)
		require.NotContains(t, err.Error(), "SECRET", "URLs are redacted")
		var pe *outhook.PermanentError
		var ge *outhook.GoneError
		var re *outhook.RetryAfterError
		require.Equal(t, tc.want.permanent && !tc.want.gone, errors.As(err, &pe), "%d permanent", tc.code)
		require.Equal(t, tc.want.gone, errors.As(err, &ge), "%d gone", tc.code)
		if tc.want.retryAfter > 0 {
			require.True(t, errors.As(err, &re), "%d retry-after", tc.code)
			require.Equal(t, tc.want.retryAfter, re.After)
		} else {
			require.False(t, errors.As(err, &re), "%d retry-after", tc.code)
		}
		var se *safehttp.Error
		require.True(t, errors.As(err, &se))
		require.Equal(t, safehttp.ClassHTTPStatus, se.Class)
	}
}

func TestFromError(t *testing.T) {
	blocked := &safehttp.Error{Class: safehttp.ClassBlocked, Err: errors.New("10.0.0.1 is private")}
	var pe *outhook.PermanentError
	require.True(t, errors.As(FromError(blocked), &pe))
	refused := &safehttp.Error{Class: safehttp.ClassConnect, Err: errors.New("connection refused")}
	require.False(t, errors.As(FromError(refused), &pe))
	plain := errors.New("x")
	require.Equal(t, plain, FromError(plain))
}

func TestHeaders(t *testing.T) {
	require.Nil(t, Headers(nil, nil))
	require.Equal(t, map[string][]string{}, Headers(http.Header{}, nil), "empty stays empty, not nil")

	const token = "tok-123456"
	h := http.Header{
		"Content-Type":  {"application/json"},
		"Authorization": {"Bearer " + token},
		"X-Mixed":       {"a " + token + " b", "short"},
		"Location":      {"https://example.com/cb?sig=abcdef&x=1"},
		"Referer":       {"https://hooks.slack.com/services/T0/B0/XYZ"},
		"x-not-canon":   {"kept"},
	}
	got := Headers(h, []string{token, "short", ""}) // "short" is below MinSecret
	require.Equal(t, map[string][]string{
		"Content-Type":  {"application/json"},
		"Authorization": {"Bearer [redacted]"},
		"X-Mixed":       {"a [redacted] b", "short"},
		"Location":      {"https://example.com/cb?sig=[redacted]&x=[redacted]"},
		"Referer":       {"https://hooks.slack.com/services/[redacted]"},
		"x-not-canon":   {"kept"},
	}, got)
	got["Content-Type"][0] = "changed"
	require.Equal(t, "application/json", h.Get("Content-Type"), "a copy")

	req, err := http.NewRequest(http.MethodPost, "https://example.com/", nil)
	require.NoError(t, err)
	req.Header.Set("X-Key", token)
	res := Request(req, Policy{Secrets: []string{token}})
	require.Equal(t, map[string][]string{"X-Key": {"[redacted]"}}, res.RequestHeaders)
	require.Nil(t, res.ResponseHeaders)

	resp := &safehttp.Response{StatusCode: 500, Header: http.Header{"X-Echo": {token}}, Body: []byte("echo " + token)}
	res, _ = FromResponse(req, resp, Policy{Secrets: []string{token}})
	require.Equal(t, map[string][]string{"X-Key": {"[redacted]"}}, res.RequestHeaders)
	require.Equal(t, map[string][]string{"X-Echo": {"[redacted]"}}, res.ResponseHeaders)
}

// TestFromResponseCutBody: a body cut after the status does not change
// what the status says: a 2xx is a success, a 503 is retried after its
// Retry-After.
func TestFromResponseCutBody(t *testing.T) {
	req, err := http.NewRequest(http.MethodPost, "https://example.com/hook", nil)
	require.NoError(t, err)
	cut := &safehttp.Error{Class: safehttp.ClassConnect, Op: "read", Err: errors.New("connection reset by peer")}
	res, err := FromResponse(req, &safehttp.Response{StatusCode: 200, Body: []byte("ha"), BodyErr: cut}, Policy{})
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, "ha", res.Response)

	h := http.Header{"Retry-After": {"30"}}
	res, err = FromResponse(req, &safehttp.Response{StatusCode: 503, Header: h, BodyErr: cut}, Policy{})
	require.Equal(t, 503, res.StatusCode)
	ra, ok := errors.AsType[*outhook.RetryAfterError](err)
	require.True(t, ok, "%v", err)
	require.Equal(t, 30*time.Second, ra.After)
}

// TestFromResponseRedirectBlocked: a redirect toward an address the guard
// refuses fails for good as blocked, with its status in the record.
func TestFromResponseRedirectBlocked(t *testing.T) {
	req, err := http.NewRequest(http.MethodPost, "https://example.com/hook", nil)
	require.NoError(t, err)
	blocked := &safehttp.Error{Class: safehttp.ClassBlocked, Op: "redirect", StatusCode: 307, Err: errors.New("redirect refused: 169.254.169.254 is in the link-local range")}
	res, err := FromResponse(req, &safehttp.Response{StatusCode: 307, Header: http.Header{"Location": {"http://169.254.169.254/"}}, RedirectBlocked: blocked}, Policy{})
	require.Equal(t, 307, res.StatusCode)
	_, permanent := errors.AsType[*outhook.PermanentError](err)
	require.True(t, permanent, "%v", err)
	se, ok := errors.AsType[*safehttp.Error](err)
	require.True(t, ok)
	require.Equal(t, safehttp.ClassBlocked, se.Class)
	require.Equal(t, []string{"http://169.254.169.254/"}, res.ResponseHeaders["Location"])
}
