package adminhttp

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/outhook/outhook"
)

// subscriptionInput is the body of createSubscription and
// updateSubscription. The read-only members of a subscription are accepted,
// and ignored, so that a client can send back what it read.
type subscriptionInput struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Events      []string        `json:"events"`
	DelivererID string          `json:"delivererId"`
	Config      json.RawMessage `json:"config"`
	Disabled    *bool           `json:"disabled"`
	Filter      *outhook.Filter `json:"filter"`
	// Limits replaces the subscription's limits; absent means none, as
	// for every other member of a replacement.
	Limits *outhook.DeliveryLimits `json:"limits"`

	DisabledReason string                      `json:"disabledReason"`
	Health         *outhook.SubscriptionHealth `json:"health"`
	CreatedAt      time.Time                   `json:"createdAt"`
	UpdatedAt      time.Time                   `json:"updatedAt"`
}

func (in *subscriptionInput) subscription() outhook.Subscription {
	var limits outhook.DeliveryLimits
	if in.Limits != nil {
		limits = *in.Limits
	}
	return outhook.Subscription{
		ID: in.ID, Name: in.Name, Events: in.Events, DelivererID: in.DelivererID,
		Config: in.Config, Disabled: in.Disabled != nil && *in.Disabled, Filter: in.Filter,
		Limits: limits,
	}
}

// viewSubscription prepares a subscription the client returned (its config
// already masked) for a caller: a disabled reason written by outhook from a
// deliverer's error has the subscription's secrets removed.
func (h *Handler) viewSubscription(r *http.Request, s outhook.Subscription) outhook.Subscription {
	if s.DisabledReason != "" {
		s.DisabledReason = scrub(s.DisabledReason, h.storedSecrets(r.Context(), s.ID))
	}
	return s
}

type subscriptionCursor struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"t"`
}

func (h *Handler) listSubscriptions(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r, "limit", "cursor"); err != nil {
		return err
	}
	limit, err := parseLimit(r, 100, 500)
	if err != nil {
		return err
	}
	var after *subscriptionCursor
	if c := r.URL.Query().Get("cursor"); c != "" {
		after = new(subscriptionCursor)
		if err := decodeCursor(c, after); err != nil {
			return err
		}
	}
	subs, err := h.client.Subscriptions(r.Context())
	if err != nil {
		return err
	}
	// Subscriptions come oldest first. The page starts after the cursor's
	// subscription, or, if it was deleted since, after the last one created
	// no later than it.
	start := 0
	if after != nil {
		if i := slices.IndexFunc(subs, func(s outhook.Subscription) bool { return s.ID == after.ID }); i >= 0 {
			start = i + 1
		} else {
			for start < len(subs) && !subs[start].CreatedAt.After(after.CreatedAt) {
				start++
			}
		}
	}
	page := subs[start:]
	out := struct {
		Items      []outhook.Subscription `json:"items"`
		NextCursor string                 `json:"nextCursor,omitempty"`
	}{Items: []outhook.Subscription{}}
	if len(page) > limit {
		page = page[:limit]
		last := page[len(page)-1]
		out.NextCursor = encodeCursor(subscriptionCursor{ID: last.ID, CreatedAt: last.CreatedAt})
	}
	for _, s := range page {
		out.Items = append(out.Items, h.viewSubscription(r, s))
	}
	return h.writeJSON(w, http.StatusOK, out)
}

func (h *Handler) createSubscription(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	var in subscriptionInput
	if err := h.decodeBody(w, r, &in, false); err != nil {
		return err
	}
	s, err := h.client.CreateSubscription(r.Context(), in.subscription())
	if err != nil {
		// A deliverer's error may quote any value of the config.
		h.fail(w, r, err, configStrings(in.Config))
		return nil
	}
	w.Header().Set("Location", "subscriptions/"+url.PathEscape(s.ID))
	return h.writeJSON(w, http.StatusCreated, h.viewSubscription(r, s))
}

func (h *Handler) getSubscription(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	s, err := h.client.Subscription(r.Context(), r.PathValue("subscriptionId"))
	if err != nil {
		return err
	}
	return h.writeJSON(w, http.StatusOK, h.viewSubscription(r, s))
}

// updateSubscription replaces a subscription. Secrets sent back as
// outhook.SecretMask keep their stored values; "disabled", when absent,
// keeps the subscription's state (enable and disable have routes of their
// own, which also clear the reason outhook gave).
func (h *Handler) updateSubscription(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	id := r.PathValue("subscriptionId")
	var in subscriptionInput
	if err := h.decodeBody(w, r, &in, false); err != nil {
		return err
	}
	if in.ID != "" && in.ID != id {
		return badRequest("id", "differs from the subscription ID in the path")
	}
	in.ID = id
	cur, err := h.client.Subscription(r.Context(), id)
	if err != nil {
		return err
	}
	sub := in.subscription()
	if in.Disabled == nil {
		sub.Disabled = cur.Disabled
		if cur.Disabled {
			sub.DisabledReason = cur.DisabledReason
		}
	}
	// Masked secrets sent back are restored from the stored config, which
	// a deliverer's error may then quote.
	secrets := append(configStrings(in.Config), h.storedSecrets(r.Context(), id)...)
	s, err := h.client.UpdateSubscription(r.Context(), sub)
	if err != nil {
		h.fail(w, r, err, secrets)
		return nil
	}
	return h.writeJSON(w, http.StatusOK, h.viewSubscription(r, s))
}

func (h *Handler) deleteSubscription(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	if err := h.client.DeleteSubscription(r.Context(), r.PathValue("subscriptionId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) enableSubscription(w http.ResponseWriter, r *http.Request) error {
	return h.setEnabled(w, r, true)
}

func (h *Handler) disableSubscription(w http.ResponseWriter, r *http.Request) error {
	return h.setEnabled(w, r, false)
}

func (h *Handler) setEnabled(w http.ResponseWriter, r *http.Request, enabled bool) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	if err := h.decodeBody(w, r, &struct{}{}, true); err != nil {
		return err
	}
	s, err := h.client.SetSubscriptionEnabled(r.Context(), r.PathValue("subscriptionId"), enabled)
	if err != nil {
		return err
	}
	return h.writeJSON(w, http.StatusOK, h.viewSubscription(r, s))
}

// testResult is the answer of testSubscription.
type testResult struct {
	// Succeeded reports that the destination accepted the test event.
	Succeeded bool            `json:"succeeded"`
	Attempt   outhook.Attempt `json:"attempt"`
}

// testSubscription sends a test event to a subscription's destination now.
// A destination that refuses it is still a 200: the attempt says why.
func (h *Handler) testSubscription(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	if err := h.decodeBody(w, r, &struct{}{}, true); err != nil {
		return err
	}
	id := r.PathValue("subscriptionId")
	secrets := h.storedSecrets(r.Context(), id)
	a, err := h.client.SendTest(r.Context(), id)
	if err != nil && a.Number == 0 {
		// No attempt was made.
		h.fail(w, r, err, secrets)
		return nil
	}
	scrubAttempt(&a, secrets)
	return h.writeJSON(w, http.StatusOK, testResult{Succeeded: err == nil, Attempt: a})
}

// recoverRequest is the body of recoverSubscription.
type recoverRequest struct {
	Since  string `json:"since"`
	Until  string `json:"until"`
	Limit  int    `json:"limit"`
	Cursor string `json:"cursor"`
}

// recoverResult is what recoverSubscription answers.
type recoverResult struct {
	Redelivered int    `json:"redelivered"`
	NextCursor  string `json:"nextCursor,omitempty"`
}

// recoverSubscription redelivers the subscription's failed deliveries
// created in a time range (outhook.Client.Recover), at most limit per
// request; nextCursor, passed back as cursor with the same range, resumes.
func (h *Handler) recoverSubscription(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	var body recoverRequest
	if err := h.decodeBody(w, r, &body, true); err != nil {
		return err
	}
	req := outhook.RecoverRequest{SubscriptionID: r.PathValue("subscriptionId"), Limit: body.Limit}
	for _, f := range []struct {
		name, v string
		dst     *time.Time
	}{{"since", body.Since, &req.Since}, {"until", body.Until, &req.Until}} {
		if f.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, f.v)
		if err != nil {
			return badRequest(f.name, "must be an RFC 3339 time, such as 2026-11-29T08:00:00Z")
		}
		*f.dst = t
	}
	switch {
	case !req.Since.IsZero() && !req.Until.IsZero() && !req.Since.Before(req.Until):
		return badRequest("until", "must be after since")
	case req.Limit < 0 || req.Limit > 10_000:
		return badRequest("limit", "must be between 1 and 10000 (0 or absent: 1000)")
	}
	if body.Cursor != "" {
		cur, err := outhook.ParseDeliveryCursor(body.Cursor)
		if err != nil {
			return badRequest("cursor", "is not a cursor this API returned")
		}
		req.After = cur
	}
	res, err := h.client.Recover(r.Context(), req)
	if err != nil {
		return err
	}
	return h.writeJSON(w, http.StatusOK, recoverResult{Redelivered: res.Redelivered, NextCursor: res.Next.String()})
}

// checkQuery refuses query parameters other than the allowed ones, and
// repeated ones.
func checkQuery(r *http.Request, allowed ...string) error {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badRequest("query", "is not a valid query string")
	}
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			return badRequest(k, "is not a known query parameter")
		}
		if len(vs) > 1 {
			return badRequest(k, "is given more than once")
		}
	}
	return nil
}

// parseLimit reads the "limit" query parameter: def when absent, at most
// max.
func parseLimit(r *http.Request, def, max int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil || fmt.Sprint(n) != s || n < 1 || n > max {
		return 0, badRequest("limit", fmt.Sprintf("must be an integer from 1 to %d", max))
	}
	return n, nil
}

var base64URL = base64.RawURLEncoding

func encodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64URL.EncodeToString(b)
}

func decodeCursor(s string, dst any) error {
	b, err := base64URL.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, dst)
	}
	if err != nil {
		return badRequest("cursor", "is not a cursor this API returned")
	}
	return nil
}
