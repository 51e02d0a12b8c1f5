package faultserver

import (
	"fmt"
	"net/http"
	"time"
)

// Kind is what a Fault does with a request.
type Kind uint8

// Fault kinds.
const (
	// KindRespond answers Fault.Status (with Retry-After or Location when
	// the fault has them) and a short text body.
	KindRespond Kind = iota
	// KindHang never answers: the handler waits until the client gives up
	// (its timeout closes the connection) or the server closes, then drops
	// the connection.
	KindHang
	// KindTrickle answers Fault.Status with a body of Fault.Size bytes
	// sent Fault.Chunk bytes at a time, one chunk every Fault.Interval.
	KindTrickle
	// KindReset sends the status line, the headers and half of a body of
	// Fault.Size bytes, then resets the connection (TCP RST: SO_LINGER 0
	// and close).
	KindReset
	// KindLargeBody answers Fault.Status with a body of Fault.Size bytes,
	// streamed from a small buffer as fast as the client reads it.
	KindLargeBody
	// KindDrop closes the connection without answering (a FIN, no
	// status line).
	KindDrop
)

// String returns the kind's name: "respond", "hang", "trickle", "reset",
// "large-body" or "drop".
func (k Kind) String() string {
	switch k {
	case KindRespond:
		return "respond"
	case KindHang:
		return "hang"
	case KindTrickle:
		return "trickle"
	case KindReset:
		return "reset"
	case KindLargeBody:
		return "large-body"
	case KindDrop:
		return "drop"
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Defaults of the constructors.
const (
	// LargeBodySize is the size of a LargeBody fault's body when
	// Fault.Size is zero: 50 MiB.
	LargeBodySize = 50 << 20
	// ResetSize is the Content-Length a Reset fault announces when
	// Fault.Size is zero; half of it is sent before the reset.
	ResetSize = 1024
)

// Fault is what the server does with one request. Build one with OK,
// Status, RetryAfter, RetryAfterDate, Redirect, Hang, Trickle, Reset,
// LargeBody or Drop, or fill in the fields. The zero Fault answers 200 OK.
// Faults are comparable values.
type Fault struct {
	Kind Kind
	// Status is the response status of KindRespond, KindTrickle, KindReset
	// and KindLargeBody faults, 200 to 599; zero means 200.
	Status int
	// RetryAfter, when positive, is sent as a Retry-After header by a
	// KindRespond or KindReset fault: whole seconds (rounded down) as delta-seconds, or,
	// with RetryAfterDate, as the HTTP-date RetryAfter after the response
	// time (Options.Now), in IMF-fixdate form (RFC 9110 §10.2.3, §5.6.7).
	RetryAfter     time.Duration
	RetryAfterDate bool
	// Location is sent as the Location header by a KindRespond fault. One
	// that starts with "/" is made absolute with the server's URL: a redirect
	// to this same loopback server.
	Location string
	// Size is the body size of KindTrickle, KindReset and KindLargeBody
	// faults, in bytes. Zero means ResetSize for KindReset and
	// LargeBodySize for KindLargeBody.
	Size int64
	// Chunk and Interval pace a KindTrickle fault: Chunk bytes (at least 1),
	// flushed, then a pause of Interval before the next.
	Chunk    int
	Interval time.Duration
	// Name labels the fault in records and tallies; empty means the
	// fault's String.
	Name string
}

// OK answers 200 OK.
func OK() Fault { return Fault{} }

// Status answers code (200 to 599) with a short text body.
func Status(code int) Fault { return Fault{Status: code} }

// RetryAfter answers code (usually 429 or 503) with "Retry-After: <d in
// whole seconds>".
func RetryAfter(code int, d time.Duration) Fault {
	return Fault{Status: code, RetryAfter: d}
}

// RetryAfterDate answers code with Retry-After as the HTTP-date d after
// the moment of the response (by Options.Now). HTTP-dates have whole
// seconds: give both sides a clock on a whole second to get d exactly.
func RetryAfterDate(code int, d time.Duration) Fault {
	return Fault{Status: code, RetryAfter: d, RetryAfterDate: true}
}

// Redirect answers code (301, 302, 303, 307 or 308) with a Location
// header. A location that starts with "/" points at this server.
func Redirect(code int, location string) Fault {
	return Fault{Status: code, Location: location}
}

// Hang never answers (KindHang): the request waits until the client or
// the server gives up.
func Hang() Fault { return Fault{Kind: KindHang} }

// Trickle answers 200 with size bytes sent chunk bytes every interval
// (KindTrickle).
func Trickle(size int64, chunk int, interval time.Duration) Fault {
	return Fault{Kind: KindTrickle, Size: size, Chunk: chunk, Interval: interval}
}

// Reset answers 200 and cuts the body with a TCP reset (KindReset).
func Reset() Fault { return Fault{Kind: KindReset} }

// LargeBody answers 200 with a streamed body of size bytes; zero means
// LargeBodySize (50 MiB).
func LargeBody(size int64) Fault { return Fault{Kind: KindLargeBody, Size: size} }

// Drop closes the connection without an answer (KindDrop).
func Drop() Fault { return Fault{Kind: KindDrop} }

// Named returns f labelled name in records and tallies.
func (f Fault) Named(name string) Fault {
	f.Name = name
	return f
}

// Code returns the status the fault sends (200 for a zero Status), or 0
// for KindHang and KindDrop, which send none.
func (f Fault) Code() int {
	switch f.Kind {
	case KindHang, KindDrop:
		return 0
	}
	if f.Status == 0 {
		return http.StatusOK
	}
	return f.Status
}

// size returns the body size of a KindTrickle, KindReset or KindLargeBody
// fault.
func (f Fault) size() int64 {
	if f.Size > 0 {
		return f.Size
	}
	switch f.Kind {
	case KindReset:
		return ResetSize
	case KindLargeBody:
		return LargeBodySize
	}
	return 0
}

// String labels the fault: its Name if it has one, otherwise for example
// "200", "503", "429 retry-after 2m0s", "503 retry-after date +1m30s",
// "302 location /moved", "hang", "trickle 200 4096B by 512B/10ms",
// "reset", "large-body 52428800B" or "drop". Faults with the same label
// are counted together in tallies.
func (f Fault) String() string {
	if f.Name != "" {
		return f.Name
	}
	switch f.Kind {
	case KindRespond:
		s := fmt.Sprint(f.Code())
		if f.RetryAfter > 0 {
			if f.RetryAfterDate {
				s += " retry-after date +" + f.RetryAfter.String()
			} else {
				s += " retry-after " + f.RetryAfter.Truncate(time.Second).String()
			}
		}
		if f.Location != "" {
			s += " location " + f.Location
		}
		return s
	case KindTrickle:
		return fmt.Sprintf("trickle %d %dB by %dB/%s", f.Code(), f.size(), f.Chunk, f.Interval)
	case KindReset:
		s := "reset"
		if f.Code() != http.StatusOK || f.Size != 0 {
			s = fmt.Sprintf("reset %d %dB", f.Code(), f.size())
		}
		if f.RetryAfter > 0 {
			s += " retry-after " + f.RetryAfter.Truncate(time.Second).String()
		}
		return s
	case KindLargeBody:
		if f.Code() != http.StatusOK {
			return fmt.Sprintf("large-body %d %dB", f.Code(), f.size())
		}
		return fmt.Sprintf("large-body %dB", f.size())
	}
	return f.Kind.String()
}

// validate names what is wrong with f, the fault at field.
func (f Fault) validate(field string) error {
	switch {
	case f.Kind > KindDrop:
		return fmt.Errorf("faultserver: %s.Kind is unknown (%d)", field, f.Kind)
	case f.Status != 0 && (f.Status < 200 || f.Status > 599):
		return fmt.Errorf("faultserver: %s.Status %d is not 200 to 599", field, f.Status)
	case f.RetryAfter < 0:
		return fmt.Errorf("faultserver: %s.RetryAfter is negative (%v)", field, f.RetryAfter)
	case f.Size < 0:
		return fmt.Errorf("faultserver: %s.Size is negative (%d)", field, f.Size)
	case f.Interval < 0:
		return fmt.Errorf("faultserver: %s.Interval is negative (%v)", field, f.Interval)
	case f.Kind == KindTrickle && f.Chunk < 1:
		return fmt.Errorf("faultserver: %s.Chunk must be at least 1 for a trickle (%d)", field, f.Chunk)
	}
	return nil
}
