package adminhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The secrets of the test subscriptions: no answer may contain them.
const (
	secretToken = "tok-7f3a9c1e5b2d8f4a6c0e" // the vault deliverer's writeOnly field
	otherToken  = "tok-99aa77bb55cc33dd11ee" // a second value, for updates
)

type Owner struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

type IncidentCreated struct {
	IncidentID string            `json:"incidentId" validate:"required"`
	Severity   string            `json:"severity" validate:"required,oneof=critical major minor"`
	SystemIDs  []string          `json:"systemIds" validate:"required,min=1"`
	Owner      *Owner            `json:"owner,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

type Maintenance struct {
	WindowID string `json:"windowId" validate:"required"`
}

var (
	incidentCreated = outhook.MustNewHook[IncidentCreated]("incident.created")
	maintStarted    = outhook.MustNewHook[Maintenance]("started")
	brokenHook      = outhook.MustNewHook[Maintenance]("broken")
)

const (
	incidentEvent = "incident.incident.created"
	maintEvent    = "maintenance.started"
)

func newRegistry(t *testing.T) *outhook.EventRegistry {
	t.Helper()
	reg := outhook.NewEventRegistry()
	_, err := outhook.RegisterEvent(reg, outhook.EventDefinition[IncidentCreated]{
		Hook: incidentCreated, DisplayName: "Incident Created", Description: "An incident was opened.",
		Category: outhook.CategoryIncidents,
	}, outhook.PluginMetadata{PluginID: "incident", DisplayName: "Incidents"})
	require.NoError(t, err)
	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[Maintenance]{
		Hook: maintStarted, DisplayName: "Maintenance Started", Category: outhook.CategoryMaintenance,
	}, outhook.PluginMetadata{PluginID: "maintenance"})
	require.NoError(t, err)
	_, err = outhook.RegisterEvent(reg, outhook.EventDefinition[Maintenance]{
		Hook: brokenHook, DisplayName: "Always Fails",
		TransformPayload: func(Maintenance) (map[string]any, error) { return nil, errors.New("transform broke") },
	}, outhook.PluginMetadata{PluginID: "broken"})
	require.NoError(t, err)
	return reg
}

// vaultConfig has a secret field, as real deliverers do.
type vaultConfig struct {
	URL   string `json:"url" validate:"required,url"`
	Token string `json:"token" validate:"required" jsonschema:"writeOnly=true"`
}

// vault is a deliverer whose config has a secret and which, badly, quotes
// it in its errors and responses: the handler must not pass it on.
type vault struct {
	codec *outhook.ConfigCodec[vaultConfig]

	mu     sync.Mutex
	fail   bool
	gone   bool
	tokens []string      // the tokens it was given, per attempt
	hold   chan struct{} // when set, Deliver signals entered and waits for it
	inside chan struct{}
}

func newVault(t *testing.T) *vault {
	codec, err := outhook.NewConfigCodec[vaultConfig]("vault")
	require.NoError(t, err)
	return &vault{codec: codec}
}

func (v *vault) ID() string                    { return "vault" }
func (v *vault) ConfigSchema() json.RawMessage { return v.codec.Schema() }
func (v *vault) ValidateConfig(raw json.RawMessage) error {
	cfg, err := v.codec.Decode(raw)
	if err != nil {
		return err
	}
	if strings.HasPrefix(cfg.Token, "bad-") {
		// A careless deliverer: its error quotes the secret.
		return fmt.Errorf("vault: token %q was revoked", cfg.Token)
	}
	return nil
}

func (v *vault) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	var cfg vaultConfig
	_ = json.Unmarshal(req.Subscription.Config, &cfg)
	v.mu.Lock()
	v.tokens = append(v.tokens, cfg.Token)
	fail, gone, hold, inside := v.fail, v.gone, v.hold, v.inside
	v.mu.Unlock()
	if hold != nil {
		inside <- struct{}{}
		<-hold
	}
	if gone {
		return outhook.DeliveryResult{StatusCode: 410}, outhook.Gone(fmt.Errorf("vault: token %s is gone", cfg.Token))
	}
	if fail {
		res := outhook.DeliveryResult{StatusCode: 401, Response: "bad token " + cfg.Token}
		return res, outhook.Permanent(fmt.Errorf("vault: %s refused token %s", cfg.URL, cfg.Token))
	}
	return outhook.DeliveryResult{StatusCode: 200, ExternalID: "ext-1"}, nil
}

func (v *vault) setFail(fail bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.fail = fail
}

func (v *vault) lastToken() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.tokens) == 0 {
		return ""
	}
	return v.tokens[len(v.tokens)-1]
}

// env is a running client with a handler in front of it.
type env struct {
	t      *testing.T
	client *outhook.Client
	fake   *outhooktest.Deliverer
	vault  *vault
	h      *Handler
	// headers are sent with every request of do, before its own.
	headers []string
}

// allowAll authorizes every request.
func allowAll(*http.Request, Operation) error { return nil }

// byHeader authorizes by the X-Role header: none is 401, "viewer" may read,
// "admin" may do anything.
func byHeader(r *http.Request, op Operation) error {
	switch r.Header.Get("X-Role") {
	case "":
		return ErrUnauthenticated
	case "admin":
		return nil
	case "viewer":
		if op.ReadOnly {
			return nil
		}
	}
	return errors.New("not allowed")
}

func newEnv(t *testing.T, authorize AuthorizeFunc) *env {
	t.Helper()
	e := &env{t: t, fake: outhooktest.NewDeliverer("fake"), vault: newVault(t)}
	e.client = outhooktest.NewClient(t, &outhook.Config{
		Registry:   newRegistry(t),
		Deliverers: []outhook.Deliverer{e.fake, e.vault},
	})
	h, err := New(e.client, &Options{Authorize: authorize, Deliverers: []outhook.Deliverer{e.fake, e.vault}, MaxBodyBytes: 4096,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	e.h = h
	return e
}

type response struct {
	*httptest.ResponseRecorder
	t *testing.T
}

// do sends a request with the given JSON body ("" for none) and headers
// (name, value pairs).
func (e *env) do(method, path, body string, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	headers = append(slices.Clone(e.headers), headers...)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	// No answer ever carries a secret.
	for _, s := range []string{secretToken, otherToken, "bad-" + secretToken} {
		require.NotContains(e.t, w.Body.String(), s, "%s %s answered a secret", method, path)
	}
	return response{w, e.t}
}

func (r response) status(want int) response {
	r.t.Helper()
	require.Equal(r.t, want, r.Code, "body: %s", r.Body.String())
	return r
}

func (r response) decode(v any) {
	r.t.Helper()
	require.NoError(r.t, json.Unmarshal(r.Body.Bytes(), v), "body: %s", r.Body.String())
}

// problem checks that the answer is a problem detail of the given status
// and returns it.
func (r response) problem(status int) Problem {
	r.t.Helper()
	r.status(status)
	require.Equal(r.t, "application/problem+json", r.Header().Get("Content-Type"))
	var p Problem
	r.decode(&p)
	require.Equal(r.t, status, p.Status)
	require.NotEmpty(r.t, p.Type)
	require.NotEmpty(r.t, p.Title)
	require.NotEmpty(r.t, p.Instance)
	r.matches("Problem")
	return p
}

// matches checks the body against a schema of the OpenAPI document.
func (r response) matches(schema string) response {
	r.t.Helper()
	s, err := openAPISchemas().Compile("openapi.json#/components/schemas/" + schema)
	require.NoError(r.t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.Body.Bytes()))
	require.NoError(r.t, err)
	require.NoError(r.t, s.Validate(inst), "body does not match %s: %s", schema, r.Body.String())
	return r
}

func openAPISchemas() *jsonschema.Compiler {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPIDoc))
	if err != nil {
		panic(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("openapi.json", doc); err != nil {
		panic(err)
	}
	return c
}

// fields returns the fields a problem names.
func fields(p Problem) []string {
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}

const vaultSubscription = `{"name":"ops","events":["incident.**"],"delivererId":"vault",
	"config":{"url":"https://vault.example/hook","token":"` + secretToken + `"}}`

// createVault creates a subscription to the vault deliverer and returns it.
func (e *env) createVault() outhook.Subscription {
	e.t.Helper()
	var s outhook.Subscription
	e.do("POST", "/subscriptions", vaultSubscription).status(http.StatusCreated).matches("Subscription").decode(&s)
	return s
}

func (e *env) emit(id string) {
	e.t.Helper()
	require.NoError(e.t, outhook.EmitHook(context.Background(), e.client, incidentCreated,
		IncidentCreated{IncidentID: id, Severity: "critical", SystemIDs: []string{"sys-1"}}))
}

func (e *env) waitIdle() {
	e.t.Helper()
	outhooktest.WaitIdle(e.t, e.client)
}
