package jsonscalar

import (
	"encoding/json"
	"testing"
)

func TestText(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
		ok   bool
	}{
		{"sys-1", "sys-1", true}, {json.Number("1.50"), "1.50", true}, {true, "true", true}, {false, "false", true},
		{nil, "", false}, {map[string]any{}, "", false}, {[]any{"a"}, "", false}, {1.5, "", false},
	} {
		got, ok := Text(tc.v)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Text(%#v) = %q, %v; want %q, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}
