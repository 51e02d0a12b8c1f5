package render

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecode(t *testing.T) {
	v, err := Decode([]byte(`{"n":12345678901234567890} x`), false)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"n": json.Number("12345678901234567890")}, v)
	_, err = Decode([]byte(`{"n":1} x`), true)
	require.Error(t, err)
	_, err = Decode([]byte(`{"n":1} `), true)
	require.NoError(t, err)

	require.Nil(t, DecodeObject([]byte(`[1]`), false))
	require.Nil(t, DecodeObject([]byte(`null`), false))
	require.Nil(t, DecodeObject([]byte(`{} {}`), true))
	require.Equal(t, map[string]any{}, DecodeObject([]byte(`{} {}`), false))

	require.Nil(t, DecodeOrText([]byte("  ")))
	require.Nil(t, DecodeOrText([]byte("null")))
	require.Equal(t, "not \uFFFDjson", DecodeOrText([]byte("not \xffjson")))
	require.Equal(t, []any{json.Number("1")}, DecodeOrText([]byte(" [1] ")))
}

func TestDropNulls(t *testing.T) {
	v, _ := Decode([]byte(`{"a":null,"b":{"c":null,"d":1},"e":[{"f":null},null]}`), false)
	require.Equal(t, map[string]any{"b": map[string]any{"d": json.Number("1")}, "e": []any{map[string]any{}, nil}}, DropNulls(v))
}

func TestScalars(t *testing.T) {
	for v, want := range map[any]string{"s": "s", json.Number("1.50"): "1.50", true: "true", false: "false"} {
		got, ok := Scalar(v)
		require.True(t, ok)
		require.Equal(t, want, got)
	}
	for _, v := range []any{nil, map[string]any{}, []any{}} {
		_, ok := Scalar(v)
		require.False(t, ok)
	}
	arr := []any{"a", json.Number("2"), nil, true}
	s, ok := JoinScalars(arr, true)
	require.True(t, ok)
	require.Equal(t, "a, 2, true", s)
	_, ok = JoinScalars(arr, false)
	require.False(t, ok)
	_, ok = JoinScalars([]any{"a", []any{}}, true)
	require.False(t, ok)
}

func TestFields(t *testing.T) {
	obj := DecodeObject([]byte(`{"z":1,"id":"i","title":"T","tags":["a",null,"b"],"obj":{},"deep":[{}],"blank":" ","":"x","nil":null,"b":false}`), false)
	require.Equal(t, []Field{{"title", "T"}, {"id", "i"}, {"b", "false"}, {"tags", "a, b"}, {"z", "1"}},
		Fields(obj, []string{"title", "summary", "id"}))
	require.Empty(t, Fields(nil, []string{"title"}))
}

func TestFirstField(t *testing.T) {
	obj := map[string]any{"title": json.Number("7"), "summary": "  ", "message": " hi "}
	k, v, ok := FirstField(obj, []string{"title", "summary", "message"}, false)
	require.True(t, ok)
	require.Equal(t, "message", k)
	require.Equal(t, " hi ", v)
	k, v, ok = FirstField(obj, []string{"title", "summary", "message"}, true)
	require.True(t, ok)
	require.Equal(t, "title", k)
	require.Equal(t, "7", v)
	_, _, ok = FirstField(nil, []string{"title"}, true)
	require.False(t, ok)
}

func TestLookup(t *testing.T) {
	doc := DecodeObject([]byte(`{"incident":{"id":"P1","n":null,"tags":["x"]},"s":"str"}`), false)
	v, ok := Lookup(doc, "incident.id")
	require.True(t, ok)
	require.Equal(t, "P1", v)
	v, ok = Lookup(doc, "incident.n")
	require.True(t, ok)
	require.Nil(t, v)
	for _, p := range []string{"incident.nope", "s.x", "incident.tags.0", "nope"} {
		_, ok = Lookup(doc, p)
		require.False(t, ok, p)
	}
	_, ok = Lookup(nil, "a")
	require.False(t, ok)
}

func TestMarshal(t *testing.T) {
	b, err := Marshal(map[string]any{"a": "<&>"})
	require.NoError(t, err)
	require.Equal(t, `{"a":"<&>"}`, string(b))
	_, err = Marshal(func() {})
	require.Error(t, err)
}
