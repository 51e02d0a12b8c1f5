package safehttp

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// v4Cases has one address per blocked IPv4 range, and the range the error
// must name. Every spelling below is derived from these.
var v4Cases = []struct{ addr, rng string }{
	{"0.1.2.3", "0.0.0.0/8"},
	{"10.0.0.1", "10.0.0.0/8"},
	{"100.64.0.1", "100.64.0.0/10"},
	{"100.127.255.254", "100.64.0.0/10"},
	{"127.0.0.1", "127.0.0.0/8"},
	{"127.255.255.254", "127.0.0.0/8"},
	{"169.254.169.254", "169.254.0.0/16"},
	{"172.16.0.1", "172.16.0.0/12"},
	{"172.31.255.254", "172.16.0.0/12"},
	{"192.0.0.1", "192.0.0.0/24"},
	{"192.0.2.1", "192.0.2.0/24"},
	{"192.88.99.1", "192.88.99.0/24"},
	{"192.168.1.1", "192.168.0.0/16"},
	{"198.18.0.1", "198.18.0.0/15"},
	{"198.19.255.254", "198.18.0.0/15"},
	{"198.51.100.1", "198.51.100.0/24"},
	{"203.0.113.1", "203.0.113.0/24"},
	{"224.0.0.1", "224.0.0.0/4"},
	{"239.255.255.250", "224.0.0.0/4"},
	{"240.0.0.1", "240.0.0.0/4"},
	{"255.255.255.254", "240.0.0.0/4"},
	{"255.255.255.255", "255.255.255.255/32"},
}

type blockCase struct {
	name string
	addr netip.Addr
	want []string // substrings of the error
}

// spellings returns the IPv6 spellings of an IPv4 address that carry it:
// IPv4-mapped, IPv4-compatible, NAT64 and 6to4.
func spellings(v4 netip.Addr) map[string]netip.Addr {
	b := v4.As4()
	var compat, nat64, sixto4 [16]byte
	copy(compat[12:], b[:])
	nat64 = netip.MustParseAddr("64:ff9b::").As16()
	copy(nat64[12:], b[:])
	sixto4[0], sixto4[1] = 0x20, 0x02
	copy(sixto4[2:6], b[:])
	sixto4[15] = 1
	return map[string]netip.Addr{
		"mapped ::ffff:0:0/96": netip.AddrFrom16(v4.As16()),
		"compatible ::/96":     netip.AddrFrom16(compat),
		"NAT64 64:ff9b::/96":   netip.AddrFrom16(nat64),
		"6to4 2002::/16":       netip.AddrFrom16(sixto4),
	}
}

func blockCases() []blockCase {
	var cases []blockCase
	for _, c := range v4Cases {
		v4 := netip.MustParseAddr(c.addr)
		cases = append(cases, blockCase{"v4 " + c.addr, v4, []string{c.addr + " is ", "(" + c.rng + ", "}})
		for spelling, a := range spellings(v4) {
			prefix := spelling[strings.IndexByte(spelling, ' ')+1:]
			cases = append(cases, blockCase{spelling + " " + c.addr, a, []string{
				a.String() + " is ", "(" + prefix + ", ", "of " + c.addr + ", which is ", "(" + c.rng + ", ",
			}})
		}
	}
	for _, c := range []struct{ addr, rng string }{
		{"0.0.0.0", "0.0.0.0/8"},
		{"::", "::/128"},
		{"::1", "::1/128"},
		{"fe80::1", "fe80::/10"},
		{"febf:ffff::1", "fe80::/10"},
		{"fc00::1", "fc00::/7"},
		{"fd12:3456:789a::1", "fc00::/7"},
		{"ff02::1", "ff00::/8"},
		{"ff0e::101", "ff00::/8"},
		{"2001:db8::1", "2001:db8::/32"},
		{"100::1", "100::/64"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32"}, // Teredo
		{"2001::1", "2001::/32"},
		{"2001:2::1", "2001::/23"},
		{"2001:1ff::1", "2001::/23"},
		{"64:ff9b:1::a00:1", "64:ff9b:1::/48"},
		{"64:ff9b:1:ffff::8.8.8.8", "64:ff9b:1::/48"},
		{"3fff::1", "3fff::/20"},
		{"fec0::1", "fec0::/10"},
		{"4000::1", "2000::/3"},
		{"::ffff:0:a00:1", "2000::/3"}, // IPv4-translated (SIIT): not global unicast
		{"5f00::1", "2000::/3"},
	} {
		a := netip.MustParseAddr(c.addr)
		cases = append(cases, blockCase{"v6 " + c.addr, a, []string{a.String() + " is ", c.rng}})
	}
	for _, z := range []string{"fe80::1%eth0", "fe80::1%1", "2606:4700::1111%eth0", "::1%lo"} {
		cases = append(cases, blockCase{"zoned " + z, netip.MustParseAddr(z), []string{z + " has a zone"}})
	}
	cases = append(cases, blockCase{"invalid", netip.Addr{}, []string{"invalid IP address"}})
	return cases
}

func TestCheckAddrBlocks(t *testing.T) {
	for _, c := range blockCases() {
		t.Run(c.name, func(t *testing.T) {
			err := checkAddr(c.addr, nil)
			require.Error(t, err)
			require.ErrorIs(t, err, ErrBlocked)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestCheckAddrMessages(t *testing.T) {
	for addr, want := range map[string]string{
		"10.0.0.5":         "10.0.0.5 is in a private range (10.0.0.0/8, RFC 1918)",
		"169.254.169.254":  "169.254.169.254 is in the link-local range (cloud metadata endpoints) (169.254.0.0/16, RFC 3927)",
		"::ffff:10.0.0.1":  "::ffff:10.0.0.1 is an IPv4-mapped address (::ffff:0:0/96, RFC 4291) of 10.0.0.1, which is in a private range (10.0.0.0/8, RFC 1918)",
		"64:ff9b::a00:1":   "64:ff9b::a00:1 is a NAT64 address (64:ff9b::/96, RFC 6052) of 10.0.0.1, which is in a private range (10.0.0.0/8, RFC 1918)",
		"2002:a00:1::":     "2002:a00:1:: is a 6to4 address (2002::/16, RFC 3056) of 10.0.0.1, which is in a private range (10.0.0.0/8, RFC 1918)",
		"::a00:1":          "::a00:1 is an IPv4-compatible address (::/96, RFC 4291, deprecated) of 10.0.0.1, which is in a private range (10.0.0.0/8, RFC 1918)",
		"2001::1":          "2001::1 is in the Teredo range (2001::/32, RFC 4380)",
		"fe80::1%eth0":     "fe80::1%eth0 has a zone: scoped IPv6 addresses are refused",
		"255.255.255.255":  "255.255.255.255 is the limited broadcast address (255.255.255.255/32, RFC 919)",
		"64:ff9b:1::a00:1": "64:ff9b:1::a00:1 is in the local-use NAT64 range (64:ff9b:1::/48, RFC 8215)",
	} {
		err := checkAddr(netip.MustParseAddr(addr), nil)
		require.EqualError(t, err, want)
	}
}

func TestCheckAddrPublic(t *testing.T) {
	for _, a := range []string{
		"8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111", "2a00:1450:4001:82b::200e",
		// edges of blocked ranges
		"9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0", "126.255.255.255", "128.0.0.0",
		"169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0", "192.0.1.0", "192.0.3.0",
		"192.88.98.255", "192.88.100.0", "192.167.255.255", "192.169.0.0", "198.17.255.255", "198.20.0.0",
		"198.51.99.255", "198.51.101.0", "203.0.112.255", "203.0.114.0", "223.255.255.255",
		"2001:200::1", "2001:db9::1", "2003::1", "3ffe:ffff::1", "3fff:1000::1",
		// spellings of public IPv4 addresses
		"::ffff:8.8.8.8", "::808:808", "64:ff9b::808:808", "2002:808:808::1",
	} {
		require.NoError(t, checkAddr(netip.MustParseAddr(a), nil), a)
	}
}

func TestCheckAddrAllow(t *testing.T) {
	allow, err := normalizeAllow([]netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::ffff:10.1.0.0/112"), // mapped spelling of 10.1.0.0/16
		netip.MustParsePrefix("fe80::/10"),
	})
	require.NoError(t, err)
	require.Equal(t, netip.MustParsePrefix("10.1.0.0/16"), allow[1])
	for _, a := range []string{"127.0.0.1", "127.1.2.3", "::ffff:127.0.0.1", "10.1.2.3", "::ffff:10.1.2.3", "fe80::1"} {
		require.NoError(t, checkAddr(netip.MustParseAddr(a), allow), a)
	}
	for _, a := range []string{
		"::1",              // needs its own entry
		"64:ff9b::7f00:1",  // NAT64 of 127.0.0.1 is another host
		"2002:7f00:1::",    // as is 6to4
		"::7f00:1",         // and IPv4-compatible
		"10.2.0.1",         // outside the allowed part of 10/8
		"fe80::1%eth0",     // zones are refused even when allowed
		"169.254.169.254",  // unrelated
		"::ffff:192.0.2.1", // unrelated
	} {
		require.ErrorIs(t, checkAddr(netip.MustParseAddr(a), allow), ErrBlocked, a)
	}

	allow, err = normalizeAllow([]netip.Prefix{netip.MustParsePrefix("::1/128")})
	require.NoError(t, err)
	require.NoError(t, checkAddr(netip.MustParseAddr("::1"), allow))
	require.ErrorIs(t, checkAddr(netip.MustParseAddr("127.0.0.1"), allow), ErrBlocked)

	_, err = New(&Config{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}}})
	require.ErrorContains(t, err, "Config.Allow[1] is not a valid prefix")
}

// TestDialerChecksLiterals calls the dialer and the Control hook directly:
// both refuse a blocked literal address before any socket connects.
func TestDialerChecksLiterals(t *testing.T) {
	c, err := New(nil)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	c.dial = func(context.Context, string, string) (net.Conn, error) {
		t.Fatal("dialed")
		return nil, nil
	}
	for _, addr := range []string{"10.0.0.1:80", "[::ffff:127.0.0.1]:443", "[fe80::1%eth0]:80", "[64:ff9b::a9fe:a9fe]:80"} {
		_, err := c.dialContext(context.Background(), "tcp", addr)
		require.ErrorIs(t, err, ErrBlocked, addr)
		require.ErrorIs(t, c.control("tcp", addr, nil), ErrBlocked, addr)
	}
	require.ErrorIs(t, c.control("tcp", "not an address", nil), ErrBlocked)
	require.NoError(t, c.control("tcp4", "8.8.8.8:443", nil))
	require.NoError(t, c.control("tcp6", "[2606:4700::1111]:443", nil))
}

var sink error

func BenchmarkCheckAddr(b *testing.B) {
	addrs := []netip.Addr{
		netip.MustParseAddr("93.184.216.34"),
		netip.MustParseAddr("2606:4700::1111"),
		netip.MustParseAddr("::ffff:8.8.8.8"),
	}
	allow := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink = checkAddr(addrs[i%len(addrs)], allow)
	}
	if sink != nil {
		b.Fatal(sink)
	}
}
