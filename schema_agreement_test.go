package outhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// agreementPayload uses only rules that GenerateSchema maps exactly, so the
// schema and validator/v10 must give the same verdict on every value.
type agreementPayload struct {
	IncidentID string            `json:"incidentId" validate:"required"`
	SystemIDs  []string          `json:"systemIds" validate:"required,min=1,max=3,dive,required"`
	Title      string            `json:"title" validate:"required,max=8"`
	Severity   string            `json:"severity" validate:"required,oneof=critical major minor"`
	Note       string            `json:"note" validate:"omitempty,min=3"`
	Priority   int               `json:"priority" validate:"required,gte=-2,lte=5"`
	Ratio      float64           `json:"ratio" validate:"gt=0,lt=1"`
	Paged      bool              `json:"paged" validate:"required"`
	Labels     map[string]string `json:"labels" validate:"max=2,dive,keys,min=1,endkeys,max=4"`
	Ref        *string           `json:"ref" validate:"omitempty,min=2"`
	Tags       []string          `json:"tags" validate:"omitempty,min=1,dive,min=2"`
	Owner      *string           `json:"owner,omitempty" validate:"required"`
}

func compileSchema(t *testing.T, schema []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("payload.json", doc))
	s, err := c.Compile("payload.json")
	require.NoError(t, err)
	return s
}

// TestSchemaAgreesWithValidation checks the promise that an event's schema
// describes what EmitHook accepts: for random payloads, the generated JSON
// Schema (checked by an independent draft 2020-12 validator) and the
// validate tags accept and refuse the same values.
func TestSchemaAgreesWithValidation(t *testing.T) {
	raw, err := SchemaFor[agreementPayload]()
	require.NoError(t, err)
	schema := compileSchema(t, raw)
	v := newPayloadValidator()

	str := func(alphabet ...string) *rapid.Generator[string] { return rapid.SampledFrom(alphabet) }
	rapid.Check(t, func(rt *rapid.T) {
		p := agreementPayload{
			IncidentID: str("", "inc-1").Draw(rt, "incidentId"),
			Title:      str("", "t", "12345678", "123456789", "ééééééé").Draw(rt, "title"),
			Severity:   str("", "critical", "major", "minor", "apocalyptic").Draw(rt, "severity"),
			Note:       str("", "ab", "abc", "long note").Draw(rt, "note"),
			Priority:   rapid.IntRange(-4, 7).Draw(rt, "priority"),
			Ratio:      rapid.SampledFrom([]float64{-0.5, 0, 0.25, 0.999, 1, 2}).Draw(rt, "ratio"),
			Paged:      rapid.Bool().Draw(rt, "paged"),
		}
		if rapid.Bool().Draw(rt, "hasSystems") {
			p.SystemIDs = rapid.SliceOfN(str("", "sys-1", "sys-2"), 0, 4).Draw(rt, "systemIds")
		}
		if rapid.Bool().Draw(rt, "hasRef") {
			ref := str("", "a", "ab").Draw(rt, "ref")
			p.Ref = &ref
		}
		if rapid.Bool().Draw(rt, "hasOwner") {
			owner := str("", "me").Draw(rt, "owner")
			p.Owner = &owner
		}
		if rapid.Bool().Draw(rt, "hasTags") {
			p.Tags = rapid.SliceOfN(str("", "a", "ab"), 0, 2).Draw(rt, "tags")
		}
		if rapid.Bool().Draw(rt, "hasLabels") {
			p.Labels = rapid.MapOfN(str("", "a", "team"), str("", "db", "platform"), 0, 3).Draw(rt, "labels")
		}

		verr := v.validate("h", &p)
		if verr != nil && !errors.Is(verr, ErrInvalidPayload) {
			rt.Fatalf("validator error: %v", verr)
		}
		doc, err := json.Marshal(p)
		require.NoError(rt, err)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
		require.NoError(rt, err)
		serr := schema.Validate(inst)
		if (verr == nil) != (serr == nil) {
			rt.Fatalf("disagreement on %s:\nvalidator: %v\nschema:    %v", doc, verr, serr)
		}
	})
}
