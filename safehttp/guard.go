package safehttp

import (
	"errors"
	"fmt"
	"net/netip"
)

// ErrBlocked matches (with errors.Is) every refusal of the SSRF guard and of
// the request checks that come before it (HTTPSOnly, a scheme other than
// http or https, a URL without a host).
var ErrBlocked = errors.New("safehttp: blocked")

// guardError is a refusal. It reads "<addr> <reason>", or
// "<host> resolved to <addr>, which <reason>" for a resolved name, or just
// the reason when no address is involved.
type guardError struct {
	host   string
	addr   string
	reason string
}

func (e *guardError) Error() string {
	switch {
	case e.addr == "":
		return e.reason
	case e.host != "":
		return e.host + " resolved to " + e.addr + ", which " + e.reason
	default:
		return e.addr + " " + e.reason
	}
}

// Is makes errors.Is(err, ErrBlocked) true.
func (e *guardError) Is(target error) bool { return target == ErrBlocked }

func blockedf(format string, args ...any) *guardError {
	return &guardError{reason: fmt.Sprintf(format, args...)}
}

// special is a range the guard refuses, or, when embed is set, a spelling of
// IPv6 that carries an IPv4 address the guard checks instead.
type special struct {
	prefix netip.Prefix
	label  string // the prefix as written in messages ("::ffff:0:0/96")
	what   string // "is in a private range"
	ref    string // "RFC 1918"
	embed  func(netip.Addr) netip.Addr
}

func sp(prefix, what, ref string) special {
	return special{prefix: netip.MustParsePrefix(prefix), label: prefix, what: what, ref: ref}
}

func embedded(prefix, what, ref string, embed func(netip.Addr) netip.Addr) special {
	s := sp(prefix, what, ref)
	s.embed = embed
	return s
}

// v4Blocked is checked in order; the first match names the reason, so a
// narrower range comes before a wider one that holds it.
var v4Blocked = []special{
	sp("0.0.0.0/8", `is in the "this network" range`, "RFC 1122"),
	sp("10.0.0.0/8", "is in a private range", "RFC 1918"),
	sp("100.64.0.0/10", "is in the shared address (CGNAT) range", "RFC 6598"),
	sp("127.0.0.0/8", "is in the loopback range", "RFC 1122"),
	sp("169.254.0.0/16", "is in the link-local range (cloud metadata endpoints)", "RFC 3927"),
	sp("172.16.0.0/12", "is in a private range", "RFC 1918"),
	sp("192.0.0.0/24", "is in the IETF protocol assignments range", "RFC 6890"),
	sp("192.0.2.0/24", "is in a documentation range", "RFC 5737"),
	sp("192.88.99.0/24", "is in the 6to4 relay anycast range", "RFC 7526"),
	sp("192.168.0.0/16", "is in a private range", "RFC 1918"),
	sp("198.18.0.0/15", "is in the benchmarking range", "RFC 2544"),
	sp("198.51.100.0/24", "is in a documentation range", "RFC 5737"),
	sp("203.0.113.0/24", "is in a documentation range", "RFC 5737"),
	sp("224.0.0.0/4", "is in the multicast range", "RFC 5771"),
	sp("255.255.255.255/32", "is the limited broadcast address", "RFC 919"),
	sp("240.0.0.0/4", "is in the reserved range", "RFC 1112"),
}

func unmap(a netip.Addr) netip.Addr { return a.Unmap() }

// low32 is the IPv4 address in the last 32 bits (IPv4-compatible, NAT64).
func low32(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom4([4]byte(b[12:16]))
}

// sixToFour is the IPv4 address in bits 16..48 of a 6to4 address.
func sixToFour(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom4([4]byte(b[2:6]))
}

var v6Blocked = []special{
	sp("::/128", "is the unspecified address", "RFC 4291"),
	sp("::1/128", "is the loopback address", "RFC 4291"),
	embedded("::ffff:0:0/96", "is an IPv4-mapped address", "RFC 4291", unmap),
	embedded("::/96", "is an IPv4-compatible address", "RFC 4291, deprecated", low32),
	embedded("64:ff9b::/96", "is a NAT64 address", "RFC 6052", low32),
	sp("64:ff9b:1::/48", "is in the local-use NAT64 range", "RFC 8215"),
	sp("100::/64", "is in the discard-only range", "RFC 6666"),
	sp("2001::/32", "is in the Teredo range", "RFC 4380"),
	sp("2001::/23", "is in the IETF protocol assignments range", "RFC 2928"),
	sp("2001:db8::/32", "is in the documentation range", "RFC 3849"),
	embedded("2002::/16", "is a 6to4 address", "RFC 3056", sixToFour),
	sp("3fff::/20", "is in the documentation range", "RFC 9637"),
	sp("fc00::/7", "is in the unique local (ULA) range", "RFC 4193"),
	sp("fe80::/10", "is in the link-local range", "RFC 4291"),
	sp("fec0::/10", "is in the site-local range", "RFC 3879, deprecated"),
	sp("ff00::/8", "is in the multicast range", "RFC 4291"),
}

// globalUnicast is the only IPv6 space handed out for global unicast; any
// address outside it that no entry above explains is IETF-reserved.
var globalUnicast = netip.MustParsePrefix("2000::/3")

// checkAddr returns nil when the guard lets addr be dialed, and a
// *guardError (matching ErrBlocked) naming the address and the range
// otherwise.
//
// Zoned addresses are always refused. Then allow wins: addr passes when a
// prefix holds it or, for an IPv4-mapped address, its IPv4 form. Otherwise
// the address is refused when it is in a blocked range, or, for the
// IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4 spellings,
// when the IPv4 address it carries is.
func checkAddr(addr netip.Addr, allow []netip.Prefix) error {
	if !addr.IsValid() {
		return blockedf("invalid IP address")
	}
	if addr.Zone() != "" {
		return &guardError{addr: addr.String(), reason: "has a zone: scoped IPv6 addresses are refused"}
	}
	if allowed(addr, allow) {
		return nil
	}
	if reason := blockedReason(addr); reason != "" {
		return &guardError{addr: addr.String(), reason: reason}
	}
	return nil
}

func allowed(addr netip.Addr, allow []netip.Prefix) bool {
	u := addr.Unmap()
	for _, p := range allow {
		if p.Contains(addr) || p.Contains(u) {
			return true
		}
	}
	return false
}

// blockedReason says why addr is refused ("is in a private range
// (10.0.0.0/8, RFC 1918)"), or returns "" when it is not.
func blockedReason(addr netip.Addr) string {
	if addr.Is4() {
		for _, r := range v4Blocked {
			if r.prefix.Contains(addr) {
				return fmt.Sprintf("%s (%s, %s)", r.what, r.label, r.ref)
			}
		}
		return ""
	}
	for _, r := range v6Blocked {
		if !r.prefix.Contains(addr) {
			continue
		}
		if r.embed == nil {
			return fmt.Sprintf("%s (%s, %s)", r.what, r.label, r.ref)
		}
		v4 := r.embed(addr)
		inner := blockedReason(v4)
		if inner == "" {
			return ""
		}
		return fmt.Sprintf("%s (%s, %s) of %s, which %s", r.what, r.label, r.ref, v4, inner)
	}
	if !globalUnicast.Contains(addr) {
		return "is in IETF-reserved space (outside global unicast 2000::/3, RFC 4291)"
	}
	return ""
}

// normalizeAllow validates the allow-list and rewrites IPv4-mapped prefixes
// (::ffff:127.0.0.0/104) to their IPv4 form.
func normalizeAllow(in []netip.Prefix) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for i, p := range in {
		if !p.IsValid() {
			return nil, fmt.Errorf("safehttp: Config.Allow[%d] is not a valid prefix", i)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
