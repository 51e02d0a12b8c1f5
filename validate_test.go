package outhook

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func validIncident() sampleIncident {
	return sampleIncident{
		IncidentID: "inc-1",
		SystemIDs:  []string{"db", "api"},
		Title:      "Database unavailable",
		Severity:   "critical",
		CreatedAt:  time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Labels:     map[string]string{"team": "storage"},
		Count:      3,
		Priority:   2,
		Paged:      true,
	}
}

func TestValidateRuleMessages(t *testing.T) {
	type (
		str struct {
			V string `json:"v" validate:"required"`
		}
		strMin struct {
			V string `json:"v" validate:"min=3"`
		}
		strMin1 struct {
			V string `json:"v" validate:"min=1"`
		}
		strMax struct {
			V string `json:"v" validate:"max=2"`
		}
		strLen struct {
			V string `json:"v" validate:"len=4"`
		}
		strGt struct {
			V string `json:"v" validate:"gt=2"`
		}
		strLt struct {
			V string `json:"v" validate:"lt=2"`
		}
		strEq struct {
			V string `json:"v" validate:"eq=v1"`
		}
		oneOf struct {
			V string `json:"v" validate:"oneof=critical major minor"`
		}
		email struct {
			V string `json:"v" validate:"email"`
		}
		url struct {
			V string `json:"v" validate:"url"`
		}
		httpURL struct {
			V string `json:"v" validate:"http_url"`
		}
		uuid struct {
			V string `json:"v" validate:"uuid4"`
		}
		hostname struct {
			V string `json:"v" validate:"hostname"`
		}
		ip struct {
			V string `json:"v" validate:"ip"`
		}
		ipv4 struct {
			V string `json:"v" validate:"ipv4"`
		}
		alphanum struct {
			V string `json:"v" validate:"alphanum"`
		}
		datetime struct {
			V string `json:"v" validate:"datetime=2006-01-02"`
		}
		numMin struct {
			V int `json:"v" validate:"min=1"`
		}
		numMax struct {
			V float64 `json:"v" validate:"max=1.5"`
		}
		numGt struct {
			V int `json:"v" validate:"gt=0"`
		}
		numLt struct {
			V int `json:"v" validate:"lt=0"`
		}
		numOneOf struct {
			V int `json:"v" validate:"oneof=1 2 3"`
		}
		sliceMin struct {
			V []string `json:"v" validate:"min=1"`
		}
		sliceMax struct {
			V []string `json:"v" validate:"max=1"`
		}
		sliceLen struct {
			V []int `json:"v" validate:"len=2"`
		}
		sliceUnique struct {
			V []int `json:"v" validate:"unique"`
		}
		mapMin struct {
			V map[string]int `json:"v" validate:"min=2"`
		}
		pointer struct {
			V *int `json:"v" validate:"required"`
		}
		future struct {
			V time.Time `json:"v" validate:"gt"`
		}
		orRule struct {
			V string `json:"v" validate:"email|url"`
		}
		unmapped struct {
			V string `json:"v" validate:"startswith=x"`
		}
		noJSONTag struct {
			Value string `validate:"required"`
		}
	)

	tests := []struct {
		name    string
		payload any
		rule    string
		param   string
		field   string
		message string
	}{
		{"required", str{}, "required", "", "v", "v is required"},
		{"string min", strMin{V: "ab"}, "min", "3", "v", "v must be at least 3 characters long"},
		{"string min singular", strMin1{}, "min", "1", "v", "v must be at least 1 character long"},
		{"string max", strMax{V: "abc"}, "max", "2", "v", "v must be at most 2 characters long"},
		{"string len", strLen{V: "abc"}, "len", "4", "v", "v must be exactly 4 characters long"},
		{"string gt", strGt{V: "ab"}, "gt", "2", "v", "v must be more than 2 characters long"},
		{"string lt", strLt{V: "ab"}, "lt", "2", "v", "v must be fewer than 2 characters long"},
		{"string eq", strEq{V: "v2"}, "eq", "v1", "v", `v must be equal to "v1"`},
		{"oneof", oneOf{V: "low"}, "oneof", "critical major minor", "v", "v must be one of [critical major minor]"},
		{"email", email{V: "nope"}, "email", "", "v", "v must be a valid email address"},
		{"url", url{V: "nope"}, "url", "", "v", "v must be a valid URL"},
		{"http_url", httpURL{V: "ftp://x"}, "http_url", "", "v", "v must be a valid HTTP or HTTPS URL"},
		{"uuid", uuid{V: "nope"}, "uuid4", "", "v", "v must be a valid UUID"},
		{"hostname", hostname{V: "-x-"}, "hostname", "", "v", "v must be a valid hostname"},
		{"ip", ip{V: "nope"}, "ip", "", "v", "v must be a valid IP address"},
		{"ipv4", ipv4{V: "::1"}, "ipv4", "", "v", "v must be a valid IPv4 address"},
		{"alphanum", alphanum{V: "a-b"}, "alphanum", "", "v", "v must contain only ASCII letters and digits"},
		{"datetime", datetime{V: "yesterday"}, "datetime", "2006-01-02", "v", `v must be a date-time in the layout "2006-01-02"`},
		{"number min", numMin{}, "min", "1", "v", "v must be at least 1"},
		{"number max", numMax{V: 2}, "max", "1.5", "v", "v must be at most 1.5"},
		{"number gt", numGt{}, "gt", "0", "v", "v must be greater than 0"},
		{"number lt", numLt{}, "lt", "0", "v", "v must be less than 0"},
		{"number oneof", numOneOf{V: 4}, "oneof", "1 2 3", "v", "v must be one of [1 2 3]"},
		{"slice min", sliceMin{}, "min", "1", "v", "v must have at least 1 item"},
		{"slice max", sliceMax{V: []string{"a", "b"}}, "max", "1", "v", "v must have at most 1 item"},
		{"slice len", sliceLen{V: []int{1}}, "len", "2", "v", "v must have exactly 2 items"},
		{"slice unique", sliceUnique{V: []int{1, 1}}, "unique", "", "v", "v must not contain duplicate values"},
		{"map min", mapMin{V: map[string]int{"a": 1}}, "min", "2", "v", "v must have at least 2 entries"},
		{"nil pointer", pointer{}, "required", "", "v", "v is required"},
		{"time gt", future{V: time.Now().Add(-time.Hour)}, "gt", "", "v", "v must be in the future"},
		{"or", orRule{V: "nope"}, "email|url", "", "v", `v failed the "email|url" rule`},
		{"unmapped", unmapped{V: "y"}, "startswith", "x", "v", `v failed the "startswith=x" rule`},
		{"go name without json tag", noJSONTag{}, "required", "", "Value", "Value is required"},
	}
	p := newPayloadValidator()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := p.validate("test.hook", tc.payload)
			var pe *PayloadError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, "test.hook", pe.Hook)
			require.Equal(t, []FieldError{{Field: tc.field, Rule: tc.rule, Param: tc.param, Message: tc.message}}, pe.Fields)
		})
	}
}

func TestValidateReportsAllFieldsAtOnce(t *testing.T) {
	p := newPayloadValidator()
	in := validIncident()
	in.Title = ""
	in.Severity = "low"
	in.SystemIDs = []string{"db", ""}
	in.Count = 101

	err := p.validate("incident.created", &in)
	require.ErrorIs(t, err, ErrInvalidPayload)
	var pe *PayloadError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []FieldError{
		{Field: "systemIds[1]", Rule: "min", Param: "1", Message: "systemIds[1] must be at least 1 character long"},
		{Field: "title", Rule: "required", Message: "title is required"},
		{Field: "severity", Rule: "oneof", Param: "critical major minor", Message: "severity must be one of [critical major minor]"},
		{Field: "count", Rule: "lte", Param: "100", Message: "count must be at most 100"},
	}, pe.Fields)
	require.EqualError(t, err, `outhook: invalid payload for hook "incident.created": `+
		`systemIds[1] must be at least 1 character long; title is required; `+
		`severity must be one of [critical major minor]; count must be at most 100`)
}

func TestValidateNestedJSONPaths(t *testing.T) {
	type contact struct {
		Email string `json:"email" validate:"required,email"`
	}
	type step struct {
		Name     string    `json:"name" validate:"required"`
		Contacts []contact `json:"contacts" validate:"dive"`
	}
	type base struct {
		ID string `json:"id" validate:"required"`
	}
	type runbook struct {
		base
		Owner    contact            `json:"owner"`
		Backup   *contact           `json:"backup,omitempty"`
		Steps    []step             `json:"steps" validate:"min=1,dive"`
		ByRegion map[string]contact `json:"byRegion" validate:"dive"`
		Hidden   string             `json:"-" validate:"required"`
	}
	in := runbook{
		Owner:    contact{Email: "not-an-email"},
		Backup:   &contact{},
		Steps:    []step{{Name: "page"}, {Contacts: []contact{{Email: "a@b.c"}, {Email: "x"}}}},
		ByRegion: map[string]contact{"eu": {}},
	}
	fields := payloadFields(t, newPayloadValidator().validate("", in))
	require.Equal(t, []string{
		"id",
		"owner.email",
		"backup.email",
		"steps[1].name",
		"steps[1].contacts[1].email",
		"byRegion[eu].email",
		"Hidden",
	}, fieldPaths(fields))
	require.Equal(t, "steps[1].contacts[1].email must be a valid email address", fields[4].Message)
}

func TestValidateErrorMessageWithoutHook(t *testing.T) {
	err := newPayloadValidator().validate("", sampleIncident{})
	require.ErrorContains(t, err, "outhook: invalid payload: incidentId is required; ")
}

func TestValidatePassesValidAndNonStructPayloads(t *testing.T) {
	p := newPayloadValidator()
	in := validIncident()
	for name, payload := range map[string]any{
		"struct":            in,
		"pointer":           &in,
		"pointer to ptr":    new(&in),
		"nil interface":     nil,
		"string":            "hello",
		"map":               map[string]any{"title": ""},
		"slice of structs":  []sampleIncident{{}}, // elements are not validated
		"time":              time.Now(),
		"nil map":           map[string]string(nil),
		"nil pointer (int)": (*int)(nil),
		"json.RawMessage":   json.RawMessage(`{}`),
	} {
		require.NoError(t, p.validate("h", payload), name)
	}
}

func TestValidateNilStructPointer(t *testing.T) {
	err := newPayloadValidator().validate("incident.created", (*sampleIncident)(nil))
	require.ErrorIs(t, err, ErrInvalidPayload)
	require.Equal(t, []FieldError{{Rule: "required", Message: "payload is nil"}}, payloadFields(t, err))
	require.EqualError(t, err, `outhook: invalid payload for hook "incident.created": payload is nil`)
}

func TestValidateMalformedTag(t *testing.T) {
	type bad struct {
		V string `json:"v" validate:"no_such_rule"`
	}
	err := newPayloadValidator().validate("h", bad{})
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrInvalidPayload)
	require.ErrorContains(t, err, `outhook: validate payload for hook "h": validate tags of`)
	require.ErrorContains(t, err, "no_such_rule")
}

func TestValidateRequiredStruct(t *testing.T) {
	type inner struct {
		A string `json:"a"`
	}
	type outer struct {
		In inner `json:"in" validate:"required"`
	}
	require.Equal(t, []string{"in"}, fieldPaths(payloadFields(t, newPayloadValidator().validate("", outer{}))))
	require.NoError(t, newPayloadValidator().validate("", outer{In: inner{A: "x"}}))
}

func TestPayloadErrorIs(t *testing.T) {
	var err error = &PayloadError{Fields: []FieldError{{Message: "x is required"}}}
	require.ErrorIs(t, err, ErrInvalidPayload)
	require.NotErrorIs(t, err, ErrInvalidConfig)
	require.NotErrorIs(t, err, errors.New("outhook: invalid payload"))
}

type sampleWebhookConfig struct {
	URL     string            `json:"url" validate:"required,http_url"`
	Secret  string            `json:"secret,omitempty" validate:"omitempty,min=16"`
	Timeout int               `json:"timeoutSeconds,omitempty" validate:"omitempty,min=1,max=60"`
	Headers map[string]string `json:"headers,omitempty"`
	Retry   struct {
		Max int `json:"max" validate:"gte=0,lte=10"`
	} `json:"retry"`
}

func TestConfigCodecDecode(t *testing.T) {
	codec, err := NewConfigCodec[sampleWebhookConfig]("webhook")
	require.NoError(t, err)

	t.Run("valid", func(t *testing.T) {
		cfg, err := codec.Decode(json.RawMessage(` {"url": "https://example.com/hook", "timeoutSeconds": 5, "retry": {"max": 3}} `))
		require.NoError(t, err)
		require.Equal(t, "https://example.com/hook", cfg.URL)
		require.Equal(t, 5, cfg.Timeout)
		require.Equal(t, 3, cfg.Retry.Max)
	})

	decodeErr := func(t *testing.T, raw string) *ConfigError {
		t.Helper()
		cfg, err := codec.Decode(json.RawMessage(raw))
		require.Zero(t, cfg)
		require.ErrorIs(t, err, ErrInvalidConfig)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, "webhook", ce.Deliverer)
		return ce
	}

	t.Run("unknown field", func(t *testing.T) {
		ce := decodeErr(t, `{"url": "https://example.com", "colour": "red"}`)
		require.Nil(t, ce.Fields)
		require.EqualError(t, ce, `outhook: invalid config for deliverer "webhook": unknown field "colour"`)
	})
	t.Run("unknown nested field", func(t *testing.T) {
		ce := decodeErr(t, `{"url": "https://example.com", "retry": {"max": 1, "min": 0}}`)
		require.ErrorContains(t, ce, `unknown field "min"`)
	})
	t.Run("wrong type", func(t *testing.T) {
		ce := decodeErr(t, `{"url": "https://example.com", "timeoutSeconds": "5"}`)
		require.EqualError(t, ce, `outhook: invalid config for deliverer "webhook": wrong type for field "timeoutSeconds": got JSON string, want integer`)
		var typeErr *json.UnmarshalTypeError
		require.ErrorAs(t, ce, &typeErr, "the encoding/json error stays reachable")
	})
	t.Run("wrong type nested", func(t *testing.T) {
		ce := decodeErr(t, `{"url": "https://example.com", "retry": {"max": 1.5}}`)
		require.EqualError(t, ce, `outhook: invalid config for deliverer "webhook": wrong type for field "retry.max": got JSON number 1.5, want integer (int)`)
	})
	t.Run("missing required", func(t *testing.T) {
		ce := decodeErr(t, `{"secret": "short"}`)
		require.NoError(t, ce.Err)
		require.Equal(t, []FieldError{
			{Field: "url", Rule: "required", Message: "url is required"},
			{Field: "secret", Rule: "min", Param: "16", Message: "secret must be at least 16 characters long"},
		}, ce.Fields)
		require.EqualError(t, ce, `outhook: invalid config for deliverer "webhook": url is required; secret must be at least 16 characters long`)
	})
	t.Run("empty and null are the zero config", func(t *testing.T) {
		for _, raw := range []string{"", "  ", "null"} {
			ce := decodeErr(t, raw)
			require.Equal(t, []string{"url"}, fieldPaths(ce.Fields))
		}
	})
	t.Run("malformed", func(t *testing.T) {
		ce := decodeErr(t, `{"url": `)
		require.ErrorContains(t, ce, "malformed JSON: unexpected end of input")
		ce = decodeErr(t, `{"url" "x"}`)
		require.ErrorContains(t, ce, "malformed JSON at offset")
	})
	t.Run("trailing data", func(t *testing.T) {
		ce := decodeErr(t, `{"url": "https://example.com"} {}`)
		require.ErrorContains(t, ce, "unexpected data after the top-level value")
		decodeErr(t, `{"url": "https://example.com"}}`)
	})
	t.Run("not an object", func(t *testing.T) {
		ce := decodeErr(t, `[1]`)
		require.ErrorContains(t, ce, "wrong type: got JSON array, want object")
	})
}

func TestConfigCodecPointerAndNonStructConfigs(t *testing.T) {
	ptr, err := NewConfigCodec[*sampleWebhookConfig]("webhook")
	require.NoError(t, err)
	cfg, err := ptr.Decode(json.RawMessage(`{"url": "http://example.com"}`))
	require.NoError(t, err)
	require.Equal(t, "http://example.com", cfg.URL)
	_, err = ptr.Decode(json.RawMessage(`null`))
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, []FieldError{{Rule: "required", Message: "config is nil"}}, ce.Fields)

	m, err := NewConfigCodec[map[string]int]("")
	require.NoError(t, err)
	got, err := m.Decode(json.RawMessage(`{"a": 1}`))
	require.NoError(t, err)
	require.Equal(t, map[string]int{"a": 1}, got)
	_, err = m.Decode(json.RawMessage(`{"a": "x"}`))
	// encoding/json names struct fields only, not map keys.
	require.EqualError(t, err, `outhook: invalid config: wrong type: got JSON string, want integer`)
}

func TestConfigCodecSchema(t *testing.T) {
	codec, err := NewConfigCodec[sampleWebhookConfig]("webhook")
	require.NoError(t, err)
	want, err := SchemaFor[sampleWebhookConfig]()
	require.NoError(t, err)
	got := codec.Schema()
	require.Equal(t, string(want), string(got))
	got[0] = 'X'
	require.Equal(t, string(want), string(codec.Schema()), "Schema returns a copy")
}

func TestNewConfigCodecRejectsMalformedTags(t *testing.T) {
	type bad struct {
		V string `json:"v" validate:"no_such_rule"`
	}
	_, err := NewConfigCodec[bad]("webhook")
	require.ErrorContains(t, err, `outhook: config codec for deliverer "webhook"`)

	type badSchema struct {
		C chan int `json:"c"`
	}
	_, err = NewConfigCodec[badSchema]("webhook")
	require.ErrorContains(t, err, "outhook: ")
}

func TestConfigErrorWrapsDecodeError(t *testing.T) {
	cause := errors.New("boom")
	err := &ConfigError{Err: cause}
	require.ErrorIs(t, err, cause)
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.EqualError(t, err, "outhook: invalid config: boom")
}

func BenchmarkValidate(b *testing.B) {
	p := newPayloadValidator()
	in := validIncident()
	require.NoError(b, p.validate("incident.created", &in))
	b.ReportAllocs()
	for b.Loop() {
		if err := p.validate("incident.created", &in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateNoDive(b *testing.B) {
	type flat struct {
		IncidentID string `json:"incidentId" validate:"required"`
		Title      string `json:"title" validate:"required,max=200"`
		Severity   string `json:"severity" validate:"required,oneof=critical major minor"`
		Count      int    `json:"count" validate:"gte=0,lte=100"`
	}
	p := newPayloadValidator()
	in := flat{IncidentID: "inc-1", Title: "t", Severity: "major", Count: 1}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.validate("incident.created", &in); err != nil {
			b.Fatal(err)
		}
	}
}

func payloadFields(t *testing.T, err error) []FieldError {
	t.Helper()
	var pe *PayloadError
	require.ErrorAs(t, err, &pe)
	return pe.Fields
}

func fieldPaths(fields []FieldError) []string {
	paths := make([]string, len(fields))
	for i, f := range fields {
		paths[i] = f.Field
	}
	return paths
}
