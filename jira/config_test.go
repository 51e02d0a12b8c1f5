package jira_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/jira"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/config.schema.json")

func TestConfigSchemaGolden(t *testing.T) {
	d, err := jira.New(nil)
	require.NoError(t, err)
	got := d.ConfigSchema()
	path := filepath.Join("testdata", "config.schema.json")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, append(bytes.TrimSpace(got), '\n'), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./jira -run TestConfigSchemaGolden -update to create it")
	require.JSONEq(t, string(want), string(got))
	require.Equal(t, string(bytes.TrimSpace(want)), string(bytes.TrimSpace(got)), "byte-stable schema")

	var schema struct {
		Required   []string `json:"required"`
		Properties map[string]struct {
			WriteOnly   bool   `json:"writeOnly"`
			Description string `json:"description"`
			Pattern     string `json:"pattern"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(got, &schema))
	require.ElementsMatch(t, []string{"baseUrl", "email", "apiToken", "projectKey"}, schema.Required)
	require.True(t, schema.Properties["apiToken"].WriteOnly, "the token is a secret")
	require.Equal(t, "^[A-Z][A-Z0-9_]+$", schema.Properties["projectKey"].Pattern)
	for name, p := range schema.Properties {
		require.NotEmpty(t, p.Description, name)
	}
}

func TestValidateConfig(t *testing.T) {
	const site = "https://example.atlassian.net"
	strict, err := jira.New(nil)
	require.NoError(t, err)
	loose := newDeliverer(t) // AllowAnyHost

	valid := []struct {
		d    *jira.Deliverer
		edit func(map[string]any)
	}{
		{strict, set("baseUrl", site)},
		{strict, set("baseUrl", site+"/")},
		{strict, set("baseUrl", "https://Example.Atlassian.NET:443")},
		{strict, set("baseUrl", "https://api.atlassian.com/ex/jira/11223344-a1b2-3b33-c444-def123456789")},
		{strict, func(m map[string]any) {
			m["issueType"], m["labels"] = "Bug", []string{"ops", "sev-1", strings.Repeat("l", 255)}
			m["summaryTemplate"] = `{{.Event.DisplayName}} {{.Payload.title}} {{.OccurredAt.Format "2006-01-02"}}`
			m["descriptionTemplate"] = "{{range $k, $v := .Payload}}{{$k}}: {{$v}}\n{{end}}"
		}},
		{loose, set("baseUrl", "http://127.0.0.1:8080/jira")},
		{loose, set("baseUrl", "https://jira.internal.example")},
	}
	for _, tc := range valid {
		cfg := config(t, site, tc.edit)
		require.NoError(t, tc.d.ValidateConfig(cfg), "%s", cfg)
	}

	for _, tc := range []struct {
		name  string
		d     *jira.Deliverer
		edit  func(map[string]any)
		field string // "" for a decoding error
		text  string
	}{
		{"no baseUrl", strict, func(m map[string]any) { delete(m, "baseUrl") }, "baseUrl", "baseUrl is required"},
		{"baseUrl not a URL", strict, set("baseUrl", "example.atlassian.net"), "baseUrl", "baseUrl"},
		{"plain http", strict, set("baseUrl", "http://example.atlassian.net"), "baseUrl", "https://"},
		{"plain http loose ok, ftp not", loose, set("baseUrl", "ftp://example.atlassian.net"), "baseUrl", "https://"},
		{"other host", strict, set("baseUrl", "https://jira.example.com"), "baseUrl", "not a Jira Cloud site"},
		{"bare atlassian.net", strict, set("baseUrl", "https://atlassian.net"), "baseUrl", "not a Jira Cloud site"},
		{"lookalike host", strict, set("baseUrl", "https://example.atlassian.net.evil.example"), "baseUrl", "not a Jira Cloud site"},
		{"credentials in URL", strict, set("baseUrl", "https://me:pw@example.atlassian.net"), "baseUrl", "credentials"},
		{"credentials in URL loose", loose, set("baseUrl", "https://me:pw@127.0.0.1"), "baseUrl", "credentials"},
		{"path", strict, set("baseUrl", site+"/jira/software/projects"), "baseUrl", "without a path"},
		{"query", strict, set("baseUrl", site+"?x=1"), "baseUrl", "query"},
		{"port", strict, set("baseUrl", "https://example.atlassian.net:8443"), "baseUrl", "port"},
		{"api host without cloud ID", strict, set("baseUrl", "https://api.atlassian.com"), "baseUrl", "/ex/jira/<cloudId>"},
		{"no email", strict, func(m map[string]any) { delete(m, "email") }, "email", "email is required"},
		{"bad email", strict, set("email", "bot"), "email", "email must be a valid email address"},
		{"no apiToken", strict, set("apiToken", ""), "apiToken", "apiToken is required"},
		{"no projectKey", strict, set("projectKey", ""), "projectKey", "projectKey is required"},
		{"lowercase projectKey", strict, set("projectKey", "ops"), "projectKey", "projectKey: must be"},
		{"one-letter projectKey", strict, set("projectKey", "O"), "projectKey", "projectKey"},
		{"projectKey with a quote", strict, set("projectKey", `OPS" OR project = "X`), "projectKey", "projectKey"},
		{"issueType too long", strict, set("issueType", strings.Repeat("t", 256)), "issueType", "issueType must be at most 255 characters long"},
		{"label with space", strict, set("labels", []string{"ok", "not ok"}), "labels[1]", "white space"},
		{"label with tab", strict, set("labels", []string{"not\tok"}), "labels[0]", "white space"},
		{"label too long", strict, set("labels", []string{strings.Repeat("l", 256)}), "labels[0]", "255"},
		{"empty label", strict, set("labels", []string{""}), "labels[0]", "labels[0]"},
		{"reserved label", strict, set("labels", []string{"Outhook-mine"}), "labels[0]", "reserved"},
		{"summaryTemplate syntax", strict, set("summaryTemplate", "{{.Payload.title"), "summaryTemplate", "template: summaryTemplate"},
		{"summaryTemplate unknown field", strict, set("summaryTemplate", "{{.Title}}"), "summaryTemplate", "can't evaluate field Title"},
		{"descriptionTemplate syntax", strict, set("descriptionTemplate", "{{if}}"), "descriptionTemplate", "template: descriptionTemplate"},
		{"unknown field", strict, set("priority", "High"), "", `unknown field "priority"`},
		{"wrong type", strict, set("labels", "ops"), "", "labels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.d.ValidateConfig(config(t, site, tc.edit))
			require.Error(t, err)
			require.ErrorIs(t, err, outhook.ErrInvalidConfig)
			ce, ok := errors.AsType[*outhook.ConfigError](err)
			require.True(t, ok)
			require.Equal(t, jira.ID, ce.Deliverer)
			if tc.field != "" {
				var fields []string
				for _, f := range ce.Fields {
					fields = append(fields, f.Field)
				}
				require.Contains(t, fields, tc.field)
			}
			require.Contains(t, err.Error(), tc.text)
			require.NotContains(t, err.Error(), testToken)
		})
	}

	t.Run("empty config", func(t *testing.T) {
		err := strict.ValidateConfig(nil)
		require.ErrorIs(t, err, outhook.ErrInvalidConfig)
		for _, f := range []string{"baseUrl", "email", "apiToken", "projectKey"} {
			require.Contains(t, err.Error(), f+" is required")
		}
	})
}

func TestNewAndID(t *testing.T) {
	d, err := jira.New(nil)
	require.NoError(t, err)
	require.Equal(t, "jira", d.ID())
	require.Equal(t, jira.ID, d.ID())
	var _ outhook.Deliverer = d
}

func TestConfigPrintsNoToken(t *testing.T) {
	c := jira.Config{BaseURL: "https://example.atlassian.net", Email: testEmail, APIToken: testToken, ProjectKey: "OPS"}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Sprint(&c), logged.String()} {
		require.NotContains(t, s, testToken)
		require.Contains(t, s, "[redacted]")
		require.Contains(t, s, "OPS")
	}
}
