package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/outhook/outhook/webhook"
	"github.com/stretchr/testify/require"
)

// headerOf returns the header made of name, value pairs.
func headerOf(pairs ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Set(pairs[i], pairs[i+1])
	}
	return h
}

// checkSigns checks that a message signed with signWith verifies with
// verifyWith.
func checkSigns(t *testing.T, signWith, verifyWith string) {
	t.Helper()
	body := []byte(`{"type":"t"}`)
	h := headerOf(signed(t, "msg_1", time.Now(), body, signWith)...)
	require.NoError(t, webhook.Verify(body, h, verifyWith))
}

func TestSecretNewV1(t *testing.T) {
	for _, args := range [][]string{{"secret", "new"}, {"secret", "new", "--type", "v1"}} {
		r := runCmd(t, "", nil, args...)
		require.Equal(t, 0, r.code, r.stderr)
		require.Regexp(t, `^whsec_[A-Za-z0-9+/]{43}=\n$`, r.stdout)
		checkSigns(t, strings.TrimSpace(r.stdout), strings.TrimSpace(r.stdout))
	}
	a, b := runCmd(t, "", nil, "secret", "new"), runCmd(t, "", nil, "secret", "new")
	require.NotEqual(t, a.stdout, b.stdout)
}

func TestSecretNewV1a(t *testing.T) {
	r := runCmd(t, "", nil, "secret", "new", "--type", "v1a")
	require.Equal(t, 0, r.code, r.stderr)
	m := regexp.MustCompile(`^signing key \(give to outhook\): (whsk_\S+)\npublic key \(give to receivers\): (whpk_\S+)\n$`).FindStringSubmatch(r.stdout)
	require.NotNil(t, m, r.stdout)
	signingKey, publicKey := m[1], m[2]
	derived, err := webhook.PublicKey(signingKey)
	require.NoError(t, err)
	require.Equal(t, derived, publicKey)
	checkSigns(t, signingKey, publicKey)
}

func TestSecretNewJSON(t *testing.T) {
	r := runCmd(t, "", nil, "secret", "new", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var v1 map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v1))
	require.Len(t, v1, 1)
	require.True(t, strings.HasPrefix(v1["secret"], webhook.SecretPrefix), v1)
	checkSigns(t, v1["secret"], v1["secret"])

	r = runCmd(t, "", nil, "secret", "new", "--type", "v1a", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var v1a map[string]string
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v1a))
	require.Len(t, v1a, 2)
	derived, err := webhook.PublicKey(v1a["signingKey"])
	require.NoError(t, err)
	require.Equal(t, derived, v1a["publicKey"])
	checkSigns(t, v1a["signingKey"], v1a["publicKey"])
}
