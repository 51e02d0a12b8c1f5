package safehttp

import (
	"net/url"
	"strings"
)

const (
	redacted    = "[redacted]"
	unparseable = "[unparseable URL]"
)

// Redact returns the URL u with its secrets replaced by "[redacted]", for
// errors, logs and attempt records:
//
//   - every query value ("?sig=[redacted]&api-version=[redacted]"); names
//     are kept, but a parameter without "=" is redacted whole, since it may
//     be a bare token;
//   - userinfo ("https://[redacted]@host/");
//   - the fragment;
//   - the secret path of known webhook hosts: everything after the first
//     segment on hooks.slack.com ("https://hooks.slack.com/services/[redacted]"),
//     the token after /webhooks/<id>/ on discord.com and discordapp.com
//     ("https://discord.com/api/webhooks/123/[redacted]"), and everything
//     after the first two segments on *.webhook.office.com, *.logic.azure.com
//     and *.environment.api.powerplatform.com (Teams and Power Automate
//     workflows);
//   - an opaque URL ("mailto:...") is redacted whole after its scheme.
//
// A URL written without a scheme ("hooks.slack.com/services/...") is read as
// host and path. Input that does not parse gives "[unparseable URL]".
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return unparseable
	}
	if p.Scheme == "" && p.Host == "" && p.Opaque == "" && p.User == nil && p.Path != "" && !strings.HasPrefix(u, "/") {
		if q, err := url.Parse("//" + u); err == nil && strings.Contains(q.Host, ".") {
			return strings.TrimPrefix(redactURL(q), "//")
		}
	}
	return redactURL(p)
}

func redactURL(u *url.URL) string {
	var b strings.Builder
	if u.Scheme != "" {
		b.WriteString(u.Scheme)
		b.WriteByte(':')
	}
	if u.Opaque != "" {
		b.WriteString(redacted)
	} else {
		if u.Scheme != "" || u.Host != "" || u.User != nil {
			if u.Host != "" || u.Path != "" || u.User != nil {
				b.WriteString("//")
			}
			if u.User != nil {
				b.WriteString(redacted)
				b.WriteByte('@')
			}
			if u.Host != "" {
				b.WriteString(strings.TrimPrefix((&url.URL{Host: u.Host}).String(), "//"))
			}
		}
		path := redactPath(u)
		if path != "" && path[0] != '/' && u.Host != "" {
			b.WriteByte('/')
		}
		b.WriteString(path)
	}
	if u.ForceQuery || u.RawQuery != "" {
		b.WriteByte('?')
		b.WriteString(redactQuery(u.RawQuery))
	}
	if u.Fragment != "" || u.RawFragment != "" {
		b.WriteString("#" + redacted)
	}
	return b.String()
}

// redactQuery keeps the names and redacts the values of a raw query.
func redactQuery(q string) string {
	if q == "" {
		return ""
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		if p == "" {
			continue
		}
		name, value, ok := strings.Cut(p, "=")
		switch {
		case !ok:
			parts[i] = redacted
		case value != "":
			parts[i] = name + "=" + redacted
		}
	}
	return strings.Join(parts, "&")
}

func redactPath(u *url.URL) string {
	path := u.EscapedPath()
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	switch {
	case host == "hooks.slack.com" || host == "hooks.slack-gov.com":
		return keepSegments(path, 1)
	case host == "discord.com" || host == "discordapp.com" ||
		strings.HasSuffix(host, ".discord.com") || strings.HasSuffix(host, ".discordapp.com"):
		segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
		for i, s := range segs {
			if strings.EqualFold(s, "webhooks") {
				return keepSegments(path, i+2) // .../webhooks/<id>/[redacted]
			}
		}
		return path
	case host == "webhook.office.com" || strings.HasSuffix(host, ".webhook.office.com") ||
		strings.HasSuffix(host, ".logic.azure.com") ||
		strings.HasSuffix(host, ".environment.api.powerplatform.com"):
		return keepSegments(path, 2)
	}
	return path
}

// keepSegments keeps the first n segments of an absolute path and replaces
// the rest, if there is any, with "[redacted]".
func keepSegments(path string, n int) string {
	segs := strings.SplitN(strings.TrimPrefix(path, "/"), "/", n+1)
	if len(segs) <= n || segs[n] == "" {
		return path
	}
	return "/" + strings.Join(segs[:n], "/") + "/" + redacted
}
