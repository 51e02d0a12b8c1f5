package safehttp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Class is the kind of failure an Error reports. The values are the error
// classes of outhook's attempt log.
type Class string

// Error classes.
const (
	// ClassTimeout: the request did not complete within Config.Timeout or
	// the caller's deadline, or a dial or TLS handshake timed out.
	ClassTimeout Class = "timeout"
	// ClassDNS: the host name did not resolve (including "not found").
	ClassDNS Class = "dns"
	// ClassConnect: refused, reset, unreachable, EOF before a response, a
	// malformed response and any other transport failure.
	ClassConnect Class = "connect"
	// ClassTLS: the TLS handshake failed.
	ClassTLS Class = "tls"
	// ClassBlocked: the SSRF guard or HTTPSOnly refused the request.
	ClassBlocked Class = "blocked"
	// ClassHTTPStatus: a response that is not 2xx (see StatusError).
	ClassHTTPStatus Class = "http_status"
	// ClassCanceled: the caller's context was canceled (not a deadline).
	ClassCanceled Class = "canceled"
)

// Error is the error Do and StatusError return. Its text never holds the
// unredacted URL: URL is redacted (see Redact) and Err is the transport's
// inner error, not the *url.Error that quotes the whole URL.
type Error struct {
	Class Class
	// Method is the request method ("POST").
	Method string
	// URL is the request URL, redacted.
	URL string
	// Op is where it failed: "guard", "resolve", "dial", "tls", "request",
	// "read" or "status".
	Op string
	// StatusCode is the response status for ClassHTTPStatus, 0 otherwise.
	StatusCode int
	// Err is the underlying error.
	Err error
}

// Error reads "safehttp: POST https://host/path?sig=[redacted]: blocked:
// 10.0.0.5 is in a private range (10.0.0.0/8, RFC 1918)"; for ClassHTTPStatus
// the class is left out: "safehttp: POST https://host/path: 503 Service
// Unavailable".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("safehttp: ")
	if e.Method != "" {
		b.WriteString(e.Method)
		b.WriteByte(' ')
	}
	if e.URL != "" {
		b.WriteString(e.URL)
	}
	if e.Method != "" || e.URL != "" {
		b.WriteString(": ")
	}
	if e.Class != ClassHTTPStatus && e.Class != "" {
		b.WriteString(string(e.Class))
		if e.Err != nil {
			b.WriteString(": ")
		}
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// ErrorClass returns string(e.Class); the outhook core reads attempt classes
// through this method.
func (e *Error) ErrorClass() string { return string(e.Class) }

// Permanent reports whether retrying cannot help: guard refusals
// (ClassBlocked) and TLS certificate errors (unknown authority, host name
// mismatch, expired or otherwise invalid certificate). Timeouts, DNS
// failures (even "not found"), connection failures and other TLS failures
// are worth retrying. For ClassHTTPStatus it is false: whether a status is
// final is the deliverer's decision.
func (e *Error) Permanent() bool {
	switch e.Class {
	case ClassBlocked:
		return true
	case ClassTLS:
		return isCertError(e.Err)
	}
	return false
}

// StatusError builds the error for a response that is not 2xx: class
// http_status, Op "status", StatusCode set, text "safehttp: <METHOD>
// <redacted URL>: 503 Service Unavailable". The body is never part of it.
func StatusError(req *http.Request, resp *Response) *Error {
	e := &Error{Class: ClassHTTPStatus, Op: "status"}
	if req != nil {
		e.Method = methodOf(req)
		if req.URL != nil {
			e.URL = Redact(req.URL.String())
		}
	}
	status := "no response"
	if resp != nil {
		e.StatusCode = resp.StatusCode
		status = resp.Status
		if status == "" {
			status = strconv.Itoa(resp.StatusCode)
			if text := http.StatusText(resp.StatusCode); text != "" {
				status += " " + text
			}
		}
	}
	e.Err = errors.New(status)
	return e
}

func methodOf(req *http.Request) string {
	if req.Method == "" {
		return http.MethodGet
	}
	return req.Method
}

// ctxError keeps errors.Is(err, context.DeadlineExceeded) (or Canceled)
// true for a transport error caused by the context, whatever the transport
// made of it.
type ctxError struct {
	msg    string
	target error
	err    error
}

func (e *ctxError) Error() string        { return e.msg }
func (e *ctxError) Unwrap() error        { return e.err }
func (e *ctxError) Is(target error) bool { return target == e.target }

// ownTimeout is the cause of the context Do derives with Config.Timeout.
type ownTimeout struct{ d time.Duration }

func (t *ownTimeout) Error() string { return "safehttp: timeout after " + t.d.String() }

// wrap turns a transport error into an *Error. ctx is the context the
// request ran under (Do's, with the timeout).
func wrap(ctx context.Context, method, redactedURL, op string, err error) *Error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err // the url.Error text quotes the whole URL
	}
	e := &Error{Method: method, URL: redactedURL, Op: op, Err: err}
	ctxErr := ctx.Err()
	switch {
	case errors.Is(err, ErrBlocked):
		e.Class, e.Op = ClassBlocked, "guard"
	case errors.Is(ctxErr, context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		e.Class = ClassTimeout
		if t, ok := context.Cause(ctx).(*ownTimeout); ok {
			e.Err = &ctxError{msg: "no complete response within " + t.d.String() + " (" + err.Error() + ")", target: context.DeadlineExceeded, err: err}
		} else if !errors.Is(err, context.DeadlineExceeded) {
			e.Err = &ctxError{msg: "context deadline exceeded (" + err.Error() + ")", target: context.DeadlineExceeded, err: err}
		}
	case errors.Is(ctxErr, context.Canceled) || errors.Is(err, context.Canceled):
		e.Class = ClassCanceled
		if !errors.Is(err, context.Canceled) {
			e.Err = &ctxError{msg: "context canceled (" + err.Error() + ")", target: context.Canceled, err: err}
		}
	default:
		e.Class, e.Op = classify(err, op)
	}
	return e
}

// classify sorts a transport error that is neither a refusal nor the
// context's doing.
func classify(err error, op string) (Class, string) {
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return ClassDNS, "resolve"
	}
	if isTLSError(err) {
		return ClassTLS, "tls"
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		if isDial(err) {
			op = "dial"
		}
		return ClassTimeout, op
	}
	if isDial(err) {
		op = "dial"
	}
	return ClassConnect, op
}

func isDial(err error) bool {
	oe, ok := errors.AsType[*net.OpError](err)
	return ok && oe.Op == "dial"
}

func isTLSError(err error) bool {
	if isCertError(err) {
		return true
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.AlertError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*tls.ECHRejectionError](err); ok {
		return true
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "remote error" {
		return true // an alert from the server
	}
	msg := err.Error()
	return strings.Contains(msg, "tls: ") ||
		strings.Contains(msg, "server gave HTTP response to HTTPS client") // net/http's text for a RecordHeaderError
}

// isCertError reports a certificate the client cannot trust.
func isCertError(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.SystemRootsError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.ConstraintViolationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnhandledCriticalExtension](err); ok {
		return true
	}
	return false
}
