package jira_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/jira"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
)

func TestSendTest(t *testing.T) {
	for _, tc := range []struct {
		name        string
		register    bool
		wantSummary string
	}{
		{"no registered event", false, outhook.TestEventID},
		{"registered event", true, "Incident Created"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeJira(t)
			reg := outhook.NewEventRegistry()
			if tc.register {
				hook := outhook.MustNewHook[incident]("incident.created")
				outhook.MustRegisterEvent(reg, outhook.EventDefinition[incident]{Hook: hook, DisplayName: "Incident Created"},
					outhook.PluginMetadata{PluginID: "incident"})
			}
			c := outhooktest.NewClient(t, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{newDeliverer(t)}})
			ctx := context.Background()
			sub, err := c.CreateSubscription(ctx, outhook.Subscription{
				Name: "jira", Events: []string{"incident.**"}, DelivererID: jira.ID,
				Config: config(t, f.URL(), set("descriptionTemplate", "{{.Payload.message}}\nSubscription {{.Payload.subscriptionId}}, severity {{.Payload.severity}}")),
			})
			require.NoError(t, err)

			a, err := c.SendTest(ctx, sub.ID)
			require.NoError(t, err)
			require.Equal(t, outhook.AttemptSucceeded, a.Outcome)
			require.Equal(t, outhook.TriggerTest, a.Trigger)
			require.Equal(t, http.StatusCreated, a.StatusCode)
			require.Equal(t, "OPS-1", a.ExternalID)

			require.Len(t, f.Searches(), 1)
			fields := createdFields(t, f, 0)
			require.Equal(t, tc.wantSummary, fields["summary"])
			labels := fields["labels"].([]any)
			require.Len(t, labels, 1)
			require.True(t, strings.HasPrefix(labels[0].(string), "outhook-test_"), labels[0])
			require.Equal(t, []string{
				"This is a test event from outhook: if you can read it, subscription " + sub.ID + " reaches its destination.",
				"Subscription " + sub.ID + ", severity",
			}, paragraphs(t, fields["description"]))
		})
	}

	t.Run("default description", func(t *testing.T) {
		f := newFakeJira(t)
		c := outhooktest.NewClient(t, &outhook.Config{Deliverers: []outhook.Deliverer{newDeliverer(t)}})
		sub, err := c.CreateSubscription(context.Background(), outhook.Subscription{Events: []string{"x.**"}, DelivererID: jira.ID, Config: config(t, f.URL())})
		require.NoError(t, err)
		a, err := c.SendTest(context.Background(), sub.ID)
		require.NoError(t, err)
		require.Equal(t, "OPS-1", a.ExternalID)
		got := paragraphs(t, createdFields(t, f, 0)["description"])
		require.Equal(t, "Event: outhook.test", got[0])
		require.Contains(t, got, "subscriptionId: "+sub.ID)
		require.Contains(t, got, "test: true")
	})

	t.Run("failure is reported", func(t *testing.T) {
		f := newFakeJira(t)
		f.set(func(f *fakeJira) {
			f.onCreate = func(w http.ResponseWriter, _ *http.Request) bool {
				writeJSON(w, http.StatusBadRequest, `{"errorMessages":[],"errors":{"issuetype":"Specify a valid issue type"}}`)
				return true
			}
		})
		c := outhooktest.NewClient(t, &outhook.Config{Deliverers: []outhook.Deliverer{newDeliverer(t)}})
		sub, err := c.CreateSubscription(context.Background(), outhook.Subscription{Events: []string{"x.**"}, DelivererID: jira.ID, Config: config(t, f.URL())})
		require.NoError(t, err)
		a, err := c.SendTest(context.Background(), sub.ID)
		require.Error(t, err)
		require.Equal(t, outhook.AttemptPermanent, a.Outcome)
		require.Equal(t, http.StatusBadRequest, a.StatusCode)
		require.Contains(t, a.Error, "issuetype: Specify a valid issue type")
		require.Equal(t, "http_status", a.ErrorClass)
		require.NotContains(t, a.Error, testToken)
	})
}

type incident struct {
	IncidentID string `json:"incidentId" validate:"required"`
	Title      string `json:"title" validate:"required"`
	Severity   string `json:"severity"`
}

// TestClientRetryMakesNoDuplicate runs the idempotency flow through a
// client: the first attempt's answer is lost, the core retries, and the
// retry finds the issue instead of creating another.
func TestClientRetryMakesNoDuplicate(t *testing.T) {
	f := newFakeJira(t)
	lost := 0
	f.set(func(f *fakeJira) {
		f.afterCreate = func(w http.ResponseWriter, _ *http.Request, _ fakeIssue) bool {
			lost++
			if lost > 1 {
				return false
			}
			w.WriteHeader(http.StatusBadGateway)
			return true
		}
	})
	reg := outhook.NewEventRegistry()
	hook := outhook.MustNewHook[incident]("incident.created")
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[incident]{Hook: hook, DisplayName: "Incident Created", Category: "Incidents"},
		outhook.PluginMetadata{PluginID: "incident"})
	c := outhooktest.NewClient(t, &outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{newDeliverer(t)}})
	ctx := context.Background()
	sub, err := c.CreateSubscription(ctx, outhook.Subscription{Events: []string{"incident.incident.created"}, DelivererID: jira.ID,
		Config: config(t, f.URL(), set("summaryTemplate", "[{{.Payload.severity}}] {{.Payload.title}}"))})
	require.NoError(t, err)

	require.NoError(t, outhook.EmitHook(ctx, c, hook, incident{IncidentID: "inc-1", Title: "Database down", Severity: "critical"}))
	outhooktest.WaitIdle(t, c)

	ds, err := c.Deliveries(ctx, outhook.DeliveryQuery{SubscriptionID: sub.ID})
	require.NoError(t, err)
	require.Len(t, ds, 1)
	dl := ds[0]
	require.Equal(t, outhook.DeliverySucceeded, dl.Status)
	require.Equal(t, "OPS-1", dl.ExternalID)
	require.Len(t, dl.Attempts, 2)
	require.Equal(t, outhook.AttemptRetryable, dl.Attempts[0].Outcome)
	require.Equal(t, http.StatusBadGateway, dl.Attempts[0].StatusCode)
	require.Equal(t, outhook.AttemptSucceeded, dl.Attempts[1].Outcome)
	require.Equal(t, "OPS-1", dl.Attempts[1].ExternalID)
	for _, a := range dl.Attempts {
		require.NotContains(t, a.Error, testToken)
		require.NotContains(t, a.Response, testToken)
	}

	issues := f.Issues()
	require.Len(t, issues, 1, "exactly one issue")
	require.Len(t, f.Creates(), 1)
	require.Equal(t, []string{jira.IssueLabel(dl.ID)}, issues[0].Labels)
	require.Equal(t, "outhook-"+dl.ID, jira.IssueLabel(dl.ID))
	require.Equal(t, "[critical] Database down", issues[0].Fields["summary"])
	for _, s := range f.Searches() {
		require.Equal(t, fmt.Sprintf(`project = "OPS" AND labels = "outhook-%s"`, dl.ID), s.Query.Get("jql"))
	}
}
