package outhook

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRecordHeaders(t *testing.T) {
	require.Nil(t, recordHeaders(nil, false))
	require.Equal(t, map[string][]string{}, recordHeaders(map[string][]string{}, true), "empty stays empty, not nil")

	in := map[string][]string{
		"Authorization":       {"Bearer abc"},
		"Proxy-Authorization": {"Basic abc"},
		"Cookie":              {"a=b"},
		"Webhook-Signature":   {"v1,abc v1,def"},
		"X-Api-Key":           {"k"},
		"x-auth-token":        {"t"},
		"X-Client-Secret":     {"s"},
		"Www-Authenticate":    {"Bearer realm=x"},
		"Set-Cookie":          {"session=abc"},
		"set-cookie2":         {"session=abc"},
		"Webhook-Id":          {"dlv_1"},
		"Idempotency-Key":     {"idem-1"},
		"Accept":              {"b", "a"},
		"X-None":              {},
	}
	req := recordHeaders(in, false)
	res := recordHeaders(in, true)
	for _, name := range []string{"Authorization", "Proxy-Authorization", "Cookie", "Webhook-Signature", "X-Api-Key",
		"x-auth-token", "X-Client-Secret", "Www-Authenticate"} {
		require.Equal(t, []string{Redacted}, req[name], name)
		require.Equal(t, []string{Redacted}, res[name], name)
	}
	require.Equal(t, []string{Redacted}, req["Set-Cookie"], "a request has no Set-Cookie, but it is redacted all the same")
	require.NotContains(t, res, "Set-Cookie", "dropped from responses")
	require.NotContains(t, res, "set-cookie2", "dropped from responses, whatever the case")
	require.Equal(t, []string{"dlv_1"}, req["Webhook-Id"])
	require.Equal(t, []string{"idem-1"}, req["Idempotency-Key"])
	require.Equal(t, []string{"b", "a"}, req["Accept"], "values keep their order")
	require.Equal(t, []string{}, req["X-None"])
	require.Equal(t, "Bearer abc", in["Authorization"][0], "the input is not changed")

	// Bounds: values, then bytes.
	many := map[string][]string{}
	for i := range 100 {
		many["X-H"+strings.Repeat("x", i)] = []string{"v"}
	}
	got := recordHeaders(many, true)
	n := 0
	for _, vs := range got {
		n += len(vs)
	}
	require.Equal(t, MaxAttemptHeaders, n)
	big := map[string][]string{"A": {strings.Repeat("a", 5000)}, "B": {strings.Repeat("b", 5000)}, "C": {"c"}}
	got = recordHeaders(big, true)
	require.Equal(t, map[string][]string{"A": big["A"]}, got, "kept in name order until MaxAttemptHeaderBytes")
}

func TestRecordCopiesHeaders(t *testing.T) {
	res := DeliveryResult{
		RequestHeaders:  map[string][]string{"Authorization": {"Bearer abc"}, "Webhook-Id": {"dlv_1"}},
		ResponseHeaders: map[string][]string{"Set-Cookie": {"s=1"}, "X-Request-Id": {"r"}},
	}
	var a Attempt
	a.record(res, nil, a.StartedAt)
	require.Equal(t, map[string][]string{"Authorization": {Redacted}, "Webhook-Id": {"dlv_1"}}, a.RequestHeaders)
	require.Equal(t, map[string][]string{"X-Request-Id": {"r"}}, a.ResponseHeaders)
	res.RequestHeaders["Webhook-Id"][0] = "changed"
	require.Equal(t, "dlv_1", a.RequestHeaders["Webhook-Id"][0], "the record is a copy")
	a.record(DeliveryResult{}, nil, a.StartedAt)
	require.Nil(t, a.RequestHeaders)
	require.Nil(t, a.ResponseHeaders)
}
