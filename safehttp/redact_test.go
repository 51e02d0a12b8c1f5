package safehttp

import (
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"slack", "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
			"https://hooks.slack.com/services/[redacted]"},
		{"slack workflow", "https://hooks.slack.com/workflows/T1/A1/123/abcSECRET",
			"https://hooks.slack.com/workflows/[redacted]"},
		{"slack host case and dot", "https://Hooks.Slack.com./services/T/B/S",
			"https://Hooks.Slack.com./services/[redacted]"},
		{"slack no scheme", "hooks.slack.com/services/T/B/S",
			"hooks.slack.com/services/[redacted]"},
		{"slack root", "https://hooks.slack.com/", "https://hooks.slack.com/"},
		{"discord", "https://discord.com/api/webhooks/123456/TOKEN",
			"https://discord.com/api/webhooks/123456/[redacted]"},
		{"discordapp with wait", "https://discordapp.com/api/webhooks/123456/TOKEN?wait=true",
			"https://discordapp.com/api/webhooks/123456/[redacted]?wait=[redacted]"},
		{"discord versioned and suffix", "https://ptb.discord.com/api/v10/webhooks/1/TOKEN/slack",
			"https://ptb.discord.com/api/v10/webhooks/1/[redacted]"},
		{"discord other path", "https://discord.com/channels/1/2", "https://discord.com/channels/1/2"},
		{"teams legacy", "https://contoso.webhook.office.com/webhookb2/aaaa-bbbb@cccc-dddd/IncomingWebhook/eeee/ffff",
			"https://contoso.webhook.office.com/webhookb2/aaaa-bbbb@cccc-dddd/[redacted]"},
		{"teams workflow (logic.azure.com)",
			"https://prod-12.westus.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=SIGSECRET",
			"https://prod-12.westus.logic.azure.com:443/workflows/abc123/[redacted]?api-version=[redacted]&sp=[redacted]&sv=[redacted]&sig=[redacted]"},
		{"power automate",
			"https://default1234.56.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/abc/triggers/manual/paths/invoke?api-version=1&sig=S",
			"https://default1234.56.environment.api.powerplatform.com:443/powerautomate/automations/[redacted]?api-version=[redacted]&sig=[redacted]"},
		{"basic auth", "https://me%40example.com:pa55@jira.example.com/rest/api/3/issue",
			"https://[redacted]@jira.example.com/rest/api/3/issue"},
		{"user only", "https://token@api.example.com/x", "https://[redacted]@api.example.com/x"},
		{"query tokens", "https://api.example.com/hook?token=abc123&x=1",
			"https://api.example.com/hook?token=[redacted]&x=[redacted]"},
		{"bare and empty parameters", "https://e.com/h?flag&a=&b=2&&c=%41",
			"https://e.com/h?[redacted]&a=&b=[redacted]&&c=[redacted]"},
		{"semicolon inside a value", "https://e.com/h?a=1;token=abc", "https://e.com/h?a=[redacted]"},
		{"fragment", "https://e.com/cb#access_token=xyz", "https://e.com/cb#[redacted]"},
		{"force query", "https://e.com/?", "https://e.com/?"},
		{"plain", "https://example.com/webhooks/in", "https://example.com/webhooks/in"},
		{"ipv6 host and port", "http://[2001:db8::1]:8080/x?k=v", "http://[2001:db8::1]:8080/x?k=[redacted]"},
		{"zoned host", "http://[fe80::1%25eth0]/", "http://[fe80::1%25eth0]/"},
		{"opaque", "mailto:someone@example.com?subject=x", "mailto:[redacted]?subject=[redacted]"},
		{"relative", "/api/hook?token=t", "/api/hook?token=[redacted]"},
		{"empty", "", ""},
		{"bad host", "http://[::1", "[unparseable URL]"},
		{"space in host", "https://exa mple.com/", "[unparseable URL]"},
		{"bad escape", "https://e.com/%zz?token=x", "[unparseable URL]"},
		{"control character", "https://e.com/\x7f", "[unparseable URL]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Redact(tc.in))
		})
	}
}

// FuzzRedact: Redact never panics, and a token= value that appears nowhere
// else in the input never appears in the output.
func FuzzRedact(f *testing.F) {
	for _, s := range [][2]string{
		{"https://api.example.com/hook", "abc123secret"},
		{"https://hooks.slack.com/services/T/B/X", "tokenvalue"},
		{"https://user:pw@host:8080/p?a=b", "Zm9vYmFy"},
		{"https://discord.com/api/webhooks/1/x?wait=true", "s3cr3t"},
		{"http://[::1]:80/?", "aaaaaa"},
		{"mailto:x", "qwerty"},
		{"%zz", "unparseable"},
		{"/relative#frag", "fragtok"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, raw, token string) {
		_ = Redact(raw)
		if strings.ContainsRune(raw, '#') {
			raw = raw[:strings.IndexByte(raw, '#')]
		}
		sep := "?"
		if strings.Contains(raw, "?") {
			sep = "&"
		}
		in := raw + sep + "token=" + url.QueryEscape(token)
		out := Redact(in)
		if len(token) < 6 || strings.IndexFunc(token, func(r rune) bool {
			return r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r))
		}) >= 0 {
			return
		}
		// Text the output may legitimately hold: the input outside the
		// token, its host and path as url.URL decodes and escapes them,
		// and Redact's own words.
		allowed := strings.ToLower(raw + " " + redacted + " " + unparseable)
		for _, s := range []string{in, "//" + in} {
			if u, err := url.Parse(s); err == nil {
				host := (&url.URL{Host: u.Host}).String()
				allowed += strings.ToLower(" " + u.Host + " " + host + " " + u.Path + " " + u.EscapedPath() + " " + u.Opaque)
			}
		}
		if strings.Contains(allowed, strings.ToLower(token)) {
			return
		}
		if strings.Contains(strings.ToLower(out), strings.ToLower(token)) {
			t.Fatalf("Redact(%q) = %q holds the token", in, out)
		}
	})
}
