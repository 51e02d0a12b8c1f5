package outhook_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

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
