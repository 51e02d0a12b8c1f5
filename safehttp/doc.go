// Package safehttp is the outbound HTTP client of every outhook deliverer
// (webhook, Slack, PagerDuty, Teams, Discord, Jira). A subscription's URL
// comes from a user, so the client must not become a way into the network
// it runs in (server-side request forgery): it refuses to connect to
// loopback, private, link-local, cloud metadata and other internal
// addresses, does not follow redirects, bounds time and memory, and keeps
// secrets in URLs out of errors and logs.
//
// # The guard
//
// The transport's dialer resolves the host itself (with Config.Resolver),
// checks every address the name resolves to, and then dials the checked IP
// literal, so the address connected to is the address that was checked:
// a DNS answer that changes between a check and the connect (DNS
// rebinding) cannot slip through. If any of the resolved addresses is
// refused, the connection is refused, even when others are public: a name
// that mixes public and internal answers is either misconfigured or an
// attack, and trying only the public ones would make the outcome depend on
// the order of the answers. As a second line of defense a net.Dialer
// Control function checks the address each socket actually connects to.
// A literal IP host in the URL is checked before anything is dialed.
//
// Refused, unless Config.Allow holds the address:
//
//	IPv4  0.0.0.0/8        "this network", unspecified    RFC 1122
//	      10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16  private  RFC 1918
//	      100.64.0.0/10    shared address space (CGNAT)   RFC 6598
//	      127.0.0.0/8      loopback                       RFC 1122
//	      169.254.0.0/16   link-local, cloud metadata     RFC 3927
//	      192.0.0.0/24     IETF protocol assignments      RFC 6890
//	      192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24  documentation  RFC 5737
//	      192.88.99.0/24   6to4 relay anycast             RFC 7526
//	      198.18.0.0/15    benchmarking                   RFC 2544
//	      224.0.0.0/4      multicast                      RFC 5771
//	      240.0.0.0/4      reserved                       RFC 1112
//	      255.255.255.255  limited broadcast              RFC 919
//	IPv6  ::/128 unspecified, ::1/128 loopback            RFC 4291
//	      64:ff9b:1::/48   local-use NAT64                RFC 8215
//	      100::/64         discard-only                   RFC 6666
//	      2001::/23        IETF protocol assignments, including Teredo 2001::/32  RFC 2928, 4380
//	      2001:db8::/32, 3fff::/20  documentation         RFC 3849, 9637
//	      fc00::/7         unique local (ULA)             RFC 4193
//	      fe80::/10        link-local                     RFC 4291
//	      fec0::/10        site-local (deprecated)        RFC 3879
//	      ff00::/8         multicast                      RFC 4291
//	      anything else outside 2000::/3 (IETF-reserved)  RFC 4291
//	      addresses with a zone (fe80::1%eth0)
//
// IPv6 spellings of IPv4 addresses are refused when the IPv4 address they
// carry is: IPv4-mapped ::ffff:0:0/96 (::ffff:10.0.0.1), IPv4-compatible
// ::/96 (deprecated; ::a00:1), NAT64 64:ff9b::/96 (64:ff9b::a00:1) and 6to4
// 2002::/16 (2002:a00:1::, the IPv4 address in bits 16 to 48). With a
// public IPv4 address inside they pass.
//
// A refusal is an *Error of class "blocked" whose text names the address and
// the range ("10.0.0.5 is in a private range (10.0.0.0/8, RFC 1918)"); it is
// permanent (Error.Permanent) and matches ErrBlocked.
//
// # The allow-list
//
// Nothing is allowed by default. Config.Allow opens prefixes explicitly; the
// project's tests and demo allow 127.0.0.0/8 (and ::1/128 when they need
// it). An IPv4 prefix also covers the IPv4-mapped spelling of its addresses,
// which is the same destination; it does not cover ::1, nor the NAT64 or
// 6to4 spellings, which are other destinations: list those separately.
// Zoned addresses are refused even when allowed.
//
// With Config.Proxy the only address dialed is the proxy's, and that is what
// the guard checks (allow it if it is internal); literal IP hosts in URLs
// are still checked, but names are resolved by the proxy, which is trusted to
// enforce its own policy.
//
// # Requests and responses
//
// Do sends a request once: no retries and no redirects (a 3xx is returned
// as a response). It reads at most Config.MaxBody bytes of the body (16 KiB),
// drains at most Config.DrainLimit more (64 KiB) so the connection can be
// reused, and closes the connection when the body is longer still.
// Config.Timeout (15 s) bounds the whole request, reading included.
// Config.HTTPSOnly refuses plain http://.
//
// Once the status line has arrived, the response is the server's answer,
// even when its body is then cut by a reset or a timeout: Do returns it
// with what arrived and sets Response.BodyErr. A 2xx with a cut body is a
// request the receiver accepted; a 429 or 503 keeps its Retry-After. A 3xx
// whose Location the guard would refuse (a private or metadata address, a
// name that resolves to one, a scheme other than http(s)) comes back with
// Response.RedirectBlocked, a blocked *Error, so that a redirect toward an
// internal address is told from an ordinary one; neither is followed.
//
// Every error of Do is an *Error with a Class: timeout, dns, connect, tls,
// blocked, or canceled (the caller's context); StatusError builds the
// http_status error for a response that is not 2xx. The outhook core reads
// the class through the ErrorClass method. RetryAfter parses Retry-After
// headers in both forms.
//
// # Redaction
//
// Webhook URLs often are secrets (Slack and Discord hook paths, the sig=
// of Teams workflows, tokens in query strings). Redact removes them, and
// every Error carries only the redacted URL and never the *url.Error of
// net/http, whose text quotes the whole URL.
package safehttp
