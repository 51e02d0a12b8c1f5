package adminhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// fuzzBodyEnv is the handler FuzzAdminJSONBodies sends its bodies to, with
// a subscription to update and one with failed deliveries to recover. It
// lives as long as the fuzz target: one client for every input.
type fuzzBodyEnv struct {
	h               *Handler
	client          *outhook.Client
	updateID        string
	recoverID       string
	problem, sub    *jsonschema.Schema
	recoverResponse *jsonschema.Schema
}

func newFuzzBodyEnv(f *testing.F) *fuzzBodyEnv {
	f.Helper()
	// The registry of newRegistry, which takes a *testing.T.
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{Hook: incidentCreated, DisplayName: "Incident Created",
		Category: outhook.CategoryIncidents}, outhook.PluginMetadata{PluginID: "incident"})
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[Maintenance]{Hook: maintStarted, DisplayName: "Maintenance Started"},
		outhook.PluginMetadata{PluginID: "maintenance"})
	codec, err := outhook.NewConfigCodec[vaultConfig]("vault")
	if err != nil {
		f.Fatal(err)
	}
	v := &vault{codec: codec, fail: true}
	fake := outhooktest.NewDeliverer("fake")
	client := outhooktest.NewClient(f, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{fake, v}})
	h, err := New(client, &Options{Authorize: allowAll, Deliverers: []outhook.Deliverer{fake, v}, MaxBodyBytes: 4096,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	upd, err := client.CreateSubscription(ctx, outhook.Subscription{Events: []string{"incident.**"}, DelivererID: "vault",
		Config: json.RawMessage(`{"url":"https://vault.example/hook","token":"` + secretToken + `"}`)})
	if err != nil {
		f.Fatal(err)
	}
	rec, err := client.CreateSubscription(ctx, outhook.Subscription{Events: []string{incidentEvent}, DelivererID: "vault",
		Config: json.RawMessage(`{"url":"https://vault.example/hook","token":"` + secretToken + `"}`)})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 3 {
		if err := outhook.EmitHook(ctx, client, incidentCreated, IncidentCreated{IncidentID: fmt.Sprint("inc-", i),
			Severity: "critical", SystemIDs: []string{"sys-1"}}); err != nil {
			f.Fatal(err)
		}
	}
	outhooktest.WaitIdle(f, client)
	schemas := openAPISchemas()
	compile := func(name string) *jsonschema.Schema {
		s, err := schemas.Compile("openapi.json#/components/schemas/" + name)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	return &fuzzBodyEnv{h: h, client: client, updateID: upd.ID, recoverID: rec.ID,
		problem: compile("Problem"), sub: compile("Subscription"), recoverResponse: compile("RecoverResult")}
}

// check sends body to a route and checks the answer: never a 5xx, and
// either a success whose body matches success, or a problem detail.
func (fe *fuzzBodyEnv) check(t *testing.T, method, path string, body []byte, success *jsonschema.Schema) {
	t.Helper()
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	fe.h.ServeHTTP(w, r)
	if w.Code >= 500 {
		t.Fatalf("%s %s with %q: %d %s", method, path, body, w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), secretToken) {
		t.Fatalf("%s %s with %q answered the stored secret: %s", method, path, body, w.Body)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatalf("%s %s with %q: %d, not JSON: %q", method, path, body, w.Code, w.Body)
	}
	if w.Code >= 400 {
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("%s %s with %q: %d as %q, not a problem detail: %s", method, path, body, w.Code, ct, w.Body)
		}
		var p Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != w.Code || p.Type == "" || p.Title == "" {
			t.Fatalf("%s %s with %q: %d, a bad problem detail (%v): %s", method, path, body, w.Code, err, w.Body)
		}
		if p.Type == TypeValidation && len(p.Errors) == 0 {
			t.Fatalf("%s %s with %q: a validation problem that names no field: %s", method, path, body, w.Body)
		}
		if err := fe.problem.Validate(inst); err != nil {
			t.Fatalf("%s %s with %q: the problem does not match its schema: %v", method, path, body, err)
		}
		return
	}
	if w.Code != http.StatusOK && w.Code != http.StatusCreated {
		t.Fatalf("%s %s with %q: unexpected %d: %s", method, path, body, w.Code, w.Body)
	}
	if err := success.Validate(inst); err != nil {
		t.Fatalf("%s %s with %q: %d does not match its schema: %v", method, path, body, w.Code, err)
	}
}

// FuzzAdminJSONBodies sends any body to the routes that decode the
// richest JSON: creating and updating a subscription, and recovering one.
// The handler never answers 5xx or panics: a body is accepted, or refused
// with a problem detail.
func FuzzAdminJSONBodies(f *testing.F) {
	for _, s := range []string{
		`{"events":["maintenance.started"],"delivererId":"fake"}`,
		`{"name":"ops","events":["incident.**"],"delivererId":"vault","config":{"url":"https://v.example/h","token":"t-1"}}`,
		`{"events":["incident.incident.created"],"delivererId":"fake","filter":{"expr":"payload.severity == \"critical\""}}`,
		`{"events":["incident.incident.created"],"delivererId":"fake","filter":{"field":"severity","anyOf":["critical"]}}`,
		`{"since":"2026-11-29T08:00:00Z","until":"2026-11-30T08:00:00Z","limit":2}`,
		`{"limit":10000,"cursor":"MTIzLmE"}`,
		``,
		`null`,
	} {
		f.Add([]byte(s))
	}
	fe := newFuzzBodyEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fe.check(t, "POST", "/subscriptions", body, fe.sub)
		fe.check(t, "PUT", "/subscriptions/"+fe.updateID, body, fe.sub)
		fe.check(t, "POST", "/subscriptions/"+fe.recoverID+"/recover", body, fe.recoverResponse)
	})
}

// schemaFromBytes builds a JSON Schema from fuzz data: up to eight
// definitions whose properties, items, map values and alternatives refer
// to each other (and to the root, and through aliases of a reference), so
// that the fuzzer reaches the cycles and alternatives that random JSON
// rarely holds.
func schemaFromBytes(data []byte) string {
	const defs = 8
	parts := make([][]string, defs)
	ref := func(b byte) string {
		i := int(b>>4) % (defs + 2)
		switch {
		case i == defs:
			return `{"$ref":"#"}`
		case i == defs+1:
			return `{"$ref":"#/$defs/missing"}`
		case b&1 == 1:
			return fmt.Sprintf(`{"$ref":"#/%%24defs/D%d"}`, i) // an alias
		default:
			return fmt.Sprintf(`{"$ref":"#/$defs/D%d"}`, i)
		}
	}
	for i := 0; i+2 < len(data); i += 3 {
		d, kind, target := int(data[i])%defs, data[i+1]%8, data[i+2]
		var kw string
		switch kind {
		case 0, 1:
			kw = fmt.Sprintf(`"properties":{"p%d":%s}`, i, ref(target))
		case 2:
			kw = fmt.Sprintf(`"items":%s`, ref(target))
		case 3:
			kw = fmt.Sprintf(`"additionalProperties":%s`, ref(target))
		case 4:
			kw = fmt.Sprintf(`"oneOf":[%s,{"type":"null"}]`, ref(target))
		case 5:
			kw = fmt.Sprintf(`"anyOf":[%s,%s]`, ref(target), ref(target^0x50))
		case 6:
			kw = fmt.Sprintf(`"allOf":[%s,{"properties":{"q%d":%s}}]`, ref(target), i, ref(target^0x30))
		case 7:
			kw = fmt.Sprintf(`"prefixItems":[%s]`, ref(target))
		}
		parts[d] = append(parts[d], kw)
	}
	var b strings.Builder
	b.WriteString(`{"$ref":"#/$defs/D0","$defs":{`)
	for i, p := range parts {
		if i > 0 {
			b.WriteString(",")
		}
		// A keyword given twice in one object: the last one wins in
		// encoding/json, as in most JSON decoders.
		fmt.Fprintf(&b, `"D%d":{%s}`, i, strings.Join(p, ","))
	}
	b.WriteString("}}")
	return b.String()
}

// FuzzPropertyPathsGraph: PropertyPaths of a schema whose definitions refer
// to each other in any way ends with a bounded, sorted list of unique
// paths, none deeper than MaxPropertyDepth.
func FuzzPropertyPathsGraph(f *testing.F) {
	f.Add([]byte{0, 0, 0x00})                         // D0 refers to itself
	f.Add([]byte{0, 0, 0x10, 1, 0, 0x00})             // D0 → D1 → D0
	f.Add([]byte{0, 4, 0x11, 1, 5, 0x21, 2, 6, 0x01}) // through oneOf, anyOf, allOf, with aliases
	f.Add([]byte{0, 2, 0x80, 0, 3, 0x90})             // the root and a missing definition
	f.Add(bytes.Repeat([]byte{0, 0, 0x10, 1, 1, 0x00, 0, 5, 0x11, 1, 6, 0x01}, 8))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 300 {
			return // a hundred references are enough to find a cycle
		}
		schema := schemaFromBytes(data)
		paths, _, err := PropertyPaths(json.RawMessage(schema))
		if err != nil {
			t.Fatalf("%s: %v", schema, err)
		}
		requireBoundedPaths(t, paths)
	})
}
