package adminui

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/outhook/outhook"
	"github.com/stretchr/testify/require"
)

// submit is what a browser sends for fields left as the console rendered
// them: every input's value, ticked boxes, hidden markers for stored
// secrets and list row counts. Secret inputs are sent blank.
func submit(fields []*field, into url.Values) url.Values {
	if into == nil {
		into = url.Values{}
	}
	for _, f := range fields {
		switch f.Kind {
		case "group":
			submit(f.Children, into)
		case "list":
			into.Set(f.Name+".rows", strconv.Itoa(len(f.Rows)))
			for _, r := range f.Rows {
				submit(r.Fields, into)
			}
		case "password":
			into.Set(f.Name, "")
			if f.Stored {
				into.Set(f.Name+".stored", "1")
			}
		case "checkbox":
			if f.Checked {
				into.Set(f.Name, "true")
			}
		default:
			into.Set(f.Name, f.Value)
		}
	}
	return into
}

// TestFormRoundTrip: for every deliverer shipped, a config as the admin API
// shows it (secrets masked), rendered as a form and sent back untouched,
// reads back as the same config, so saving an unchanged form changes
// nothing.
func TestFormRoundTrip(t *testing.T) {
	configs := map[string]string{
		"webhook": `{"url":"https://hooks.example.com/in?token=[secret]","secrets":[{"secret":"[secret]"},{"secret":"[secret]","notAfter":"2026-12-01T00:00:00Z"}],
			"signingKeys":[{"key":"[secret]"}],"method":"PUT","body":"raw","headers":{"X-Team":"[secret]","X-Other":"[secret]"},
			"auth":{"type":"basic","username":"ops","password":"[secret]"},"retryStatuses":[409,425]}`,
		"slack":     `{"webhookUrl":"[secret]","textTemplate":"{{.EventID}}"}`,
		"pagerduty": `{}`,
		"teams":     `{}`,
		"discord":   `{}`,
		"jira":      `{}`,
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			doc, err := os.ReadFile(filepath.Join("..", name, "testdata", "config.schema.json"))
			require.NoError(t, err)
			fields, err := configFields(doc, decodeConfig(json.RawMessage(cfg)))
			require.NoError(t, err)
			require.NotEmpty(t, fields)
			errs := fieldErrors{}
			got, err := parseConfig(doc, submit(fields, nil), errs)
			require.NoError(t, err)
			require.Empty(t, errs)
			gotJSON, err := json.Marshal(got)
			require.NoError(t, err)
			require.JSONEq(t, cfg, string(gotJSON))
		})
	}
}

func TestFormInputs(t *testing.T) {
	doc, err := os.ReadFile("../webhook/testdata/config.schema.json")
	require.NoError(t, err)
	fields, err := configFields(doc, map[string]any{"secrets": []any{map[string]any{"secret": outhook.SecretMask}}})
	require.NoError(t, err)
	kinds := map[string]string{}
	for _, f := range fields {
		kinds[f.Name] = f.Kind
	}
	require.Equal(t, map[string]string{
		"config.url": "url", "config.secrets": "list", "config.signingKeys": "list", "config.method": "select",
		"config.body": "select", "config.headers": "pairs", "config.auth": "group", "config.retryStatuses": "lines",
	}, kinds)
	secrets := fields[1]
	require.Len(t, secrets.Rows, 2, "the stored secret and a blank row")
	require.True(t, secrets.Rows[0].Stored)
	require.Equal(t, "config.secrets[0].secret", secrets.Rows[0].Fields[0].Name)
	require.Empty(t, secrets.Rows[0].Fields[0].Value, "a secret is never an input's value")
	require.False(t, secrets.Rows[1].Stored)

	// A new secret typed in the blank row, the stored one removed: the
	// saved list has the new one first, and errors are named by their
	// place in the saved list.
	form := submit(fields, nil)
	form.Set("config.secrets[0].remove", "1")
	form.Set("config.secrets[1].secret", "whsec_new")
	form.Set("config.secrets[1].notAfter", "")
	form.Set("config.retryStatuses", "409\n\n 425 \nx")
	form.Set("config.headers", "X-A: 1\nno colon here")
	errs := fieldErrors{}
	got, err := parseConfig(doc, form, errs)
	require.NoError(t, err)
	require.Equal(t, []any{map[string]any{"secret": "whsec_new"}}, got["secrets"])
	require.Equal(t, fieldErrors{
		"config.retryStatuses": `line 3: "x" is not a whole number`,
		"config.headers":       "line 2: write one entry per line as Name: value",
	}, errs)

	// Errors land on the input they name, or the nearest one above it.
	left := attachErrors(fields, map[string]string{
		"config.secrets[0].secret": "is not a valid secret",
		"config.headers.X-A":       "cannot be set",
		"config.nope":              "is unknown",
	})
	require.Equal(t, "is not a valid secret", secrets.Rows[0].Fields[0].Error)
	require.Equal(t, "cannot be set", fields[5].Error)
	require.Equal(t, map[string]string{"config.nope": "is unknown"}, left)
}

func TestListRowsAreBounded(t *testing.T) {
	doc, err := os.ReadFile("../webhook/testdata/config.schema.json")
	require.NoError(t, err)
	form := url.Values{"config.secrets.rows": {"100000000"}}
	for i := range 200 {
		form.Set("config.secrets["+strconv.Itoa(i)+"].secret", "whsec_x")
	}
	got, err := parseConfig(doc, form, fieldErrors{})
	require.NoError(t, err)
	require.Len(t, got["secrets"], maxListRows)
}

func TestFieldRowsEndOnRecursiveSchemas(t *testing.T) {
	rows, err := fieldRows(json.RawMessage(`{"$defs":{"Node":{"type":"object","properties":{"name":{"type":"string"},"child":{"$ref":"#/$defs/Node"}}}},
		"$ref":"#/$defs/Node"}`))
	require.NoError(t, err)
	var paths []string
	for _, r := range rows {
		paths = append(paths, r.Path)
	}
	require.Equal(t, []string{"name", "child"}, paths, "a recursive reference is listed, not expanded again")
	_, err = fieldRows(json.RawMessage(`{"properties": 7}`))
	require.Error(t, err)
}

// FuzzParseConfig: any submitted form reads back as a config that encodes
// as JSON, with no panic, for the webhook deliverer's schema.
func FuzzParseConfig(f *testing.F) {
	doc, err := os.ReadFile("../webhook/testdata/config.schema.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("config.url=https%3A%2F%2Fx&config.secrets.rows=2&config.secrets%5B0%5D.secret=whsec_a&config.retryStatuses=409")
	f.Add("config.headers=A%3A+b%0AC&config.auth.type=bearer&config.secrets%5B1%5D.secret.stored=1&config.secrets.rows=3")
	f.Add("config.signingKeys.rows=-5&config.retryStatuses=%E2%82%AC")
	f.Fuzz(func(t *testing.T, query string) {
		form, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		got, err := parseConfig(doc, form, fieldErrors{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := json.Marshal(got); err != nil {
			t.Fatalf("config does not encode: %v", err)
		}
		if _, err := configFields(doc, got); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRecursiveConfigSchema: a config schema that refers to itself is
// edited as JSON below maxFormDepth, and does not recurse without end.
func TestRecursiveConfigSchema(t *testing.T) {
	doc := json.RawMessage(`{"$defs":{"Node":{"type":"object","properties":{"name":{"type":"string"},"child":{"$ref":"#/$defs/Node"}}}},
		"$ref":"#/$defs/Node"}`)
	fields, err := configFields(doc, nil)
	require.NoError(t, err)
	depth, f := 0, fields[1]
	for f.Kind == "group" {
		depth++
		f = f.Children[1]
	}
	require.Equal(t, "json", f.Kind)
	require.Equal(t, maxFormDepth, depth)
	got, err := parseConfig(doc, url.Values{"config.child.child.name": {"x"}}, fieldErrors{})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"child": map[string]any{"child": map[string]any{"name": "x"}}}, got)
}

func TestFormPage(t *testing.T) {
	for path, want := range map[string]string{
		"/subscriptions/new":           "/subscriptions/new",
		"/subscriptions/sub_1/edit":    "/subscriptions/sub_1/edit",
		"/subscriptions/sub_1/disable": "/subscriptions/sub_1",
		"/deliveries/dlv_1/redeliver":  "/deliveries/dlv_1",
		"/logout":                      "/subscriptions",
		"/subscriptions/sub_1/recover": "/subscriptions/sub_1",
		"/subscriptions/sub_1/delete":  "/subscriptions/sub_1",
		"/login":                       "/subscriptions",
	} {
		require.Equal(t, want, formPage(path), path)
	}
}
