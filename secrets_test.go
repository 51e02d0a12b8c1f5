package outhook_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/invopop/jsonschema"
	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
)

type vaultConfig struct {
	URL   string            `json:"url" validate:"required"`
	Token string            `json:"token" validate:"required" jsonschema:"writeOnly=true"`
	Keys  []vaultKey        `json:"keys,omitempty" validate:"dive"`
	Auth  *vaultAuth        `json:"auth,omitempty"`
	Extra map[string]string `json:"extra,omitempty"`
}

type vaultKey struct {
	Key   string `json:"key" validate:"required" jsonschema:"writeOnly=true"`
	Label string `json:"label,omitempty"`
}

type vaultAuth struct {
	Password string `json:"password,omitempty" jsonschema:"writeOnly=true"`
}

// vaultDeliverer has secrets in its config and records what it was given.
type vaultDeliverer struct {
	*outhooktest.Deliverer
	codec *outhook.ConfigCodec[vaultConfig]
}

func (d *vaultDeliverer) ConfigSchema() json.RawMessage { return d.codec.Schema() }
func (d *vaultDeliverer) ValidateConfig(raw json.RawMessage) error {
	_, err := d.codec.Decode(raw)
	return err
}

func TestSecretsAreMaskedInReads(t *testing.T) {
	codec, err := outhook.NewConfigCodec[vaultConfig]("vault")
	require.NoError(t, err)
	vault := &vaultDeliverer{Deliverer: outhooktest.NewDeliverer("vault"), codec: codec}
	c, _ := setup(t, &outhook.Config{Deliverers: []outhook.Deliverer{vault}})
	ctx := context.Background()

	cfg := `{"url":"https://x.example","token":"tok-SECRET-1","keys":[{"key":"key-SECRET-a","label":"old"},{"key":"key-SECRET-b"}],"auth":{"password":"pw-SECRET"},"extra":{"a":"b"}}`
	created, err := c.CreateSubscription(ctx, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "vault", Config: json.RawMessage(cfg)})
	require.NoError(t, err)
	masked := `{"url":"https://x.example","token":"[secret]","keys":[{"key":"[secret]","label":"old"},{"key":"[secret]"}],"auth":{"password":"[secret]"},"extra":{"a":"b"}}`
	require.JSONEq(t, masked, string(created.Config))

	got, err := c.Subscription(ctx, created.ID)
	require.NoError(t, err)
	require.JSONEq(t, masked, string(got.Config))
	list, err := c.Subscriptions(ctx)
	require.NoError(t, err)
	require.JSONEq(t, masked, string(list[0].Config))
	for _, s := range []outhook.Subscription{created, got, list[0]} {
		require.NotContains(t, string(s.Config), "SECRET")
	}

	// The deliverer gets the real values.
	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	outhooktest.WaitIdle(t, c)
	require.JSONEq(t, cfg, string(vault.Calls()[0].Request.Subscription.Config))

	// An update that sends the masks back keeps the stored secrets; one that
	// sends a new value changes it.
	upd := got
	upd.Config = json.RawMessage(strings.Replace(masked, `"label":"old"`, `"label":"new"`, 1))
	upd.Config = json.RawMessage(strings.Replace(string(upd.Config), `"password":"[secret]"`, `"password":"pw-NEW"`, 1))
	_, err = c.UpdateSubscription(ctx, upd)
	require.NoError(t, err)
	stored, err := c.Store().GetSubscription(ctx, created.ID)
	require.NoError(t, err)
	require.JSONEq(t, `{"url":"https://x.example","token":"tok-SECRET-1","keys":[{"key":"key-SECRET-a","label":"new"},{"key":"key-SECRET-b"}],"auth":{"password":"pw-NEW"},"extra":{"a":"b"}}`, string(stored.Config))

	// A mask with nothing stored behind it is refused as missing.
	upd.Config = json.RawMessage(`{"url":"https://x.example","token":"[secret]","keys":[{"key":"[secret]"},{"key":"[secret]"},{"key":"[secret]"}]}`)
	_, err = c.UpdateSubscription(ctx, upd)
	require.ErrorIs(t, err, outhook.ErrInvalidSubscription)

	// SetSubscriptionEnabled returns a masked view too.
	en, err := c.SetSubscriptionEnabled(ctx, created.ID, false)
	require.NoError(t, err)
	require.NotContains(t, string(en.Config), "SECRET")
}

type hookConfig struct {
	URL     string            `json:"url" validate:"required" jsonschema_extras:"x-outhook-secret=url"`
	Headers map[string]string `json:"headers,omitempty"`
}

// JSONSchemaExtend marks the header values secret: invopop/jsonschema
// ignores writeOnly on a map field.
func (hookConfig) JSONSchemaExtend(s *jsonschema.Schema) {
	if h, ok := s.Properties.Get("headers"); ok && h.AdditionalProperties != nil {
		h.AdditionalProperties.WriteOnly = true
	}
}

type hookDeliverer struct {
	*outhooktest.Deliverer
	codec *outhook.ConfigCodec[hookConfig]
}

func (d *hookDeliverer) ConfigSchema() json.RawMessage { return d.codec.Schema() }
func (d *hookDeliverer) ValidateConfig(raw json.RawMessage) error {
	_, err := d.codec.Decode(raw)
	return err
}

// TestSecretURLAndHeaderValues: a URL marked "x-outhook-secret": "url"
// shows its address with its password, query values, bare query keys and
// fragment masked; the values
// of a map whose values are writeOnly are masked, its keys shown. An update
// that sends the masked forms back keeps the stored secrets, and one that
// changes them takes the new values.
func TestSecretURLAndHeaderValues(t *testing.T) {
	codec, err := outhook.NewConfigCodec[hookConfig]("hook")
	require.NoError(t, err)
	hd := &hookDeliverer{Deliverer: outhooktest.NewDeliverer("hook"), codec: codec}
	c, _ := setup(t, &outhook.Config{Deliverers: []outhook.Deliverer{hd}})
	ctx := context.Background()

	stored := `{"url":"https://user:pw-SECRET@hooks.example/in/a?token=tok-SECRET&flag&empty=&token=tok2-SECRET#top","headers":{"X-Api-Key":"key-SECRET","X-Empty":""}}`
	created, err := c.CreateSubscription(ctx, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "hook", Config: json.RawMessage(stored)})
	require.NoError(t, err)
	masked := `{"url":"https://user:%5Bsecret%5D@hooks.example/in/a?token=[secret]&[secret]&empty=&token=[secret]#%5Bsecret%5D","headers":{"X-Api-Key":"[secret]","X-Empty":""}}`
	require.JSONEq(t, masked, string(created.Config))
	require.NotContains(t, string(created.Config), "SECRET")

	// Sent back as shown: the stored values stay.
	created.Config = json.RawMessage(masked)
	updated, err := c.UpdateSubscription(ctx, created)
	require.NoError(t, err)
	require.JSONEq(t, masked, string(updated.Config))
	raw, err := c.Store().GetSubscription(ctx, created.ID)
	require.NoError(t, err)
	require.JSONEq(t, stored, string(raw.Config))

	// A new path and one new token: the other token and the password stay.
	created.Config = json.RawMessage(`{"url":"https://user:%5Bsecret%5D@hooks.example/in/b?token=[secret]&token=new-SECRET","headers":{"X-Api-Key":"[secret]","X-New":"v"}}`)
	_, err = c.UpdateSubscription(ctx, created)
	require.NoError(t, err)
	raw, err = c.Store().GetSubscription(ctx, created.ID)
	require.NoError(t, err)
	require.JSONEq(t, `{"url":"https://user:pw-SECRET@hooks.example/in/b?token=tok-SECRET&token=new-SECRET","headers":{"X-Api-Key":"key-SECRET","X-New":"v"}}`, string(raw.Config))
}

// TestMaskedSecretsStayWithTheirDestination: an update keeps masked secrets
// only for the same destination (scheme, host and port of the URL fields):
// whoever may update a subscription but was never shown its secrets cannot
// point it at a host of their own and have them sent there. A mask that
// cannot be restored is refused, naming the field, never stored.
func TestMaskedSecretsStayWithTheirDestination(t *testing.T) {
	codec, err := outhook.NewConfigCodec[hookConfig]("hook")
	require.NoError(t, err)
	hd := &hookDeliverer{Deliverer: outhooktest.NewDeliverer("hook"), codec: codec}
	c, _ := setup(t, &outhook.Config{Deliverers: []outhook.Deliverer{hd}})
	ctx := context.Background()
	stored := `{"url":"https://TOKEN-SECRET@hooks.example/in?APIKEY-SECRET&token=tok-SECRET#frag-SECRET","headers":{"X-Api-Key":"key-SECRET"}}`
	sub, err := c.CreateSubscription(ctx, outhook.Subscription{Events: []string{createdEvent}, DelivererID: "hook", Config: json.RawMessage(stored)})
	require.NoError(t, err)
	masked := `{"url":"https://%5Bsecret%5D@hooks.example/in?[secret]&token=[secret]#%5Bsecret%5D","headers":{"X-Api-Key":"[secret]"}}`
	require.JSONEq(t, masked, string(sub.Config), "a lone username, a bare key and the fragment are masked too")

	keep := func() {
		t.Helper()
		raw, err := c.Store().GetSubscription(ctx, sub.ID)
		require.NoError(t, err)
		require.JSONEq(t, stored, string(raw.Config), "the stored config is unchanged")
	}
	for _, tc := range []struct {
		name, config, field string
	}{
		{"another host", `{"url":"https://%5Bsecret%5D@evil.example/in?[secret]&token=[secret]#[secret]","headers":{"X-Api-Key":"[secret]"}}`, "config.url"},
		{"another host, header mask only", `{"url":"https://evil.example/in","headers":{"X-Api-Key":"[secret]"}}`, "config.url"},
		{"another port", `{"url":"https://%5Bsecret%5D@hooks.example:8443/in?[secret]&token=[secret]","headers":{}}`, "config.url"},
		{"plain http", `{"url":"http://%5Bsecret%5D@hooks.example/in?token=[secret]","headers":{}}`, "config.url"},
		{"renamed key", `{"url":"https://hooks.example/in?secret=[secret]","headers":{}}`, "config.url"},
		{"new header", `{"url":"https://hooks.example/in","headers":{"X-Other":"[secret]"}}`, "config.headers.X-Other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := sub
			s.Config = json.RawMessage(tc.config)
			_, err := c.UpdateSubscription(ctx, s)
			require.ErrorIs(t, err, outhook.ErrInvalidSubscription)
			var se *outhook.SubscriptionError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tc.field, se.Field, "%v", err)
			require.NotContains(t, err.Error(), "SECRET")
			keep()
		})
	}

	// Sent back as shown, with the query mask percent-encoded as some
	// clients do: everything is kept.
	s := sub
	s.Config = json.RawMessage(`{"url":"https://%5Bsecret%5D@hooks.example/in?[secret]&token=%5Bsecret%5D#[secret]","headers":{"X-Api-Key":"[secret]"}}`)
	_, err = c.UpdateSubscription(ctx, s)
	require.NoError(t, err)
	keep()

	// A new destination with every secret given again is an ordinary update.
	s.Config = json.RawMessage(`{"url":"https://new.example/in?token=new-SECRET","headers":{"X-Api-Key":"new-key-SECRET"}}`)
	_, err = c.UpdateSubscription(ctx, s)
	require.NoError(t, err)
}
