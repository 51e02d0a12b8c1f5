package outhook_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/outhook/outhook"
)

// FuzzDeliveryCursor: any token either is refused, or decodes to a cursor
// that String encodes to a canonical token, which decodes to the same
// cursor and encodes to itself. A token need not be canonical itself: "1"
// and "01", or base64 with other padding bits, decode alike.
func FuzzDeliveryCursor(f *testing.F) {
	real := outhook.DeliveryCursor{CreatedAt: time.Date(2026, 11, 29, 8, 0, 0, 123456789, time.UTC), ID: "dlv_01JDX"}
	for _, s := range []string{
		"", real.String(), "not a cursor", "MTIzLmE", "MDEyMy5h", "LTEuYQ", "MC4", "Lg", "====", "MTIzLmEuYi5j",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := outhook.ParseDeliveryCursor(token)
		if err != nil {
			if !strings.Contains(err.Error(), "not a cursor") {
				t.Fatalf("ParseDeliveryCursor(%q): error %q does not say what is wrong", token, err)
			}
			if !c.IsZero() {
				t.Fatalf("ParseDeliveryCursor(%q) failed but returned %+v", token, c)
			}
			return
		}
		if token == "" {
			if !c.IsZero() || c.String() != "" {
				t.Fatalf(`ParseDeliveryCursor("") = %+v, want the zero cursor`, c)
			}
			return
		}
		if c.IsZero() || c.ID == "" {
			t.Fatalf("ParseDeliveryCursor(%q) = %+v: a cursor without an ID", token, c)
		}
		if c.CreatedAt.Location() != time.UTC {
			t.Fatalf("ParseDeliveryCursor(%q): time in %s, want UTC", token, c.CreatedAt.Location())
		}
		canonical := c.String()
		if canonical == "" {
			t.Fatalf("%+v (from %q) encodes to the empty token", c, token)
		}
		again, err := outhook.ParseDeliveryCursor(canonical)
		if err != nil {
			t.Fatalf("ParseDeliveryCursor(%q), the String of %+v: %v", canonical, c, err)
		}
		if again != c {
			t.Fatalf("round trip of %q: %+v, then %+v", token, c, again)
		}
		if again.String() != canonical {
			t.Fatalf("String is not canonical: %q, then %q", canonical, again.String())
		}
		if strings.ContainsAny(canonical, "+/=") || !utf8.ValidString(canonical) {
			t.Fatalf("token %q is not URL-safe", canonical)
		}
	})
}

// FuzzDeliveryCursorString: the cursor of any delivery (a time a
// time.Time in nanoseconds since 1970 can hold, and a non-empty ID)
// survives String and ParseDeliveryCursor.
func FuzzDeliveryCursorString(f *testing.F) {
	f.Add(int64(1795939200123456789), "dlv_01JDX")
	f.Add(int64(0), "x")
	f.Add(int64(-1), "a.b")
	f.Add(int64(-9223372036854775808), "\x00\xff")
	f.Add(int64(9223372036854775807), "dlv with spaces and ünïcode")
	f.Fuzz(func(t *testing.T, ns int64, id string) {
		if id == "" {
			return // not a delivery's cursor
		}
		c := outhook.DeliveryCursor{CreatedAt: time.Unix(0, ns).UTC(), ID: id}
		got, err := outhook.ParseDeliveryCursor(c.String())
		if err != nil {
			t.Fatalf("%+v: %q does not decode: %v", c, c.String(), err)
		}
		if !got.CreatedAt.Equal(c.CreatedAt) || got.ID != c.ID {
			t.Fatalf("round trip of %+v: %+v", c, got)
		}
	})
}
