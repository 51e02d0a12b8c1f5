package safehttp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	dial := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	for _, tc := range []struct {
		name      string
		err       error
		class     Class
		op        string
		permanent bool
	}{
		{"refused", dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), ClassConnect, "dial", false},
		{"unreachable", dial(os.NewSyscallError("connect", syscall.EHOSTUNREACH)), ClassConnect, "dial", false},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, ClassConnect, "request", false},
		{"EOF", io.EOF, ClassConnect, "request", false},
		{"unexpected EOF", io.ErrUnexpectedEOF, ClassConnect, "request", false},
		{"dns not found", &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}, ClassDNS, "resolve", false},
		{"dns timeout", &net.DNSError{Err: "timeout", Name: "x", IsTimeout: true}, ClassDNS, "resolve", false},
		{"net timeout", dial(timeoutErr{}), ClassTimeout, "dial", false},
		{"unknown authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, ClassTLS, "tls", true},
		{"hostname", x509.HostnameError{Host: "x", Certificate: &x509.Certificate{}}, ClassTLS, "tls", true},
		{"expired", x509.CertificateInvalidError{Reason: x509.Expired, Cert: &x509.Certificate{}}, ClassTLS, "tls", true},
		{"record header", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, ClassTLS, "tls", false},
		{"alert", &net.OpError{Op: "remote error", Err: errors.New("tls: handshake failure")}, ClassTLS, "tls", false},
		{"quic alert", tls.AlertError(40), ClassTLS, "tls", false},
		{"guard", &url.Error{Op: "Get", URL: "http://x/?token=SECRET", Err: dial(checkAddr(netip.MustParseAddr("10.0.0.1"), nil))}, ClassBlocked, "guard", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := wrap(context.Background(), "GET", "http://x/", "request", tc.err)
			require.Equal(t, tc.class, e.Class, e.Error())
			require.Equal(t, tc.op, e.Op)
			require.Equal(t, tc.permanent, e.Permanent())
			require.NotContains(t, e.Error(), "SECRET")
		})
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{
		Class:  ClassBlocked,
		Method: "POST",
		URL:    Redact("https://hooks.slack.com/services/T000/B000/XXXX"),
		Op:     "guard",
		Err:    checkAddr(netip.MustParseAddr("10.0.0.5"), nil),
	}
	require.Equal(t, "safehttp: POST https://hooks.slack.com/services/[redacted]: blocked: 10.0.0.5 is in a private range (10.0.0.0/8, RFC 1918)", e.Error())
	require.ErrorIs(t, e, ErrBlocked)
	require.Equal(t, "blocked", e.ErrorClass())

	// The core reads the class through an interface.
	var classed interface{ ErrorClass() string }
	require.ErrorAs(t, error(e), &classed)

	req, _ := http.NewRequest("DELETE", "https://api.example.com/x?k=v", nil)
	se := StatusError(req, &Response{StatusCode: 418})
	require.Equal(t, "safehttp: DELETE https://api.example.com/x?k=[redacted]: 418 I'm a teapot", se.Error())
	require.Equal(t, 418, se.StatusCode)
	require.Equal(t, "http_status", se.ErrorClass())
	require.False(t, se.Permanent())
	require.Equal(t, "safehttp: no response", StatusError(nil, nil).Error())
}
