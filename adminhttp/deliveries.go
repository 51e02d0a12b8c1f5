package adminhttp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/queue"
)

// deliverySummary is a delivery as listDeliveries shows it: without its
// attempts, which getDelivery shows, but with their number.
type deliverySummary struct {
	outhook.Delivery
	Attempts     []outhook.Attempt `json:"attempts,omitempty"` // shadows Delivery.Attempts: left out
	AttemptCount int               `json:"attemptCount"`
}

func (h *Handler) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r, "subscriptionId", "eventId", "messageId", "status", "since", "until", "limit", "cursor"); err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := parseLimit(r, 50, 500)
	if err != nil {
		return err
	}
	query := outhook.DeliveryQuery{
		SubscriptionID: q.Get("subscriptionId"),
		EventID:        q.Get("eventId"),
		MessageID:      q.Get("messageId"),
		Status:         outhook.DeliveryStatus(q.Get("status")),
		Limit:          limit + 1, // one more tells whether a next page exists
	}
	switch query.Status {
	case "", outhook.DeliveryPending, outhook.DeliverySucceeded, outhook.DeliveryFailed:
	default:
		return badRequest("status", "must be one of pending, succeeded, failed")
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"since", &query.Since}, {"until", &query.Until}} {
		if v := q.Get(f.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return badRequest(f.name, "must be an RFC 3339 time, such as 2026-11-29T08:00:00Z")
			}
			*f.dst = t
		}
	}
	if c := q.Get("cursor"); c != "" {
		cur, err := outhook.ParseDeliveryCursor(c)
		if err != nil {
			return badRequest("cursor", "is not a cursor this API returned")
		}
		query.After = cur
	}
	page, err := h.client.Deliveries(r.Context(), query)
	if err != nil {
		return err
	}
	out := struct {
		Items      []deliverySummary `json:"items"`
		NextCursor string            `json:"nextCursor,omitempty"`
	}{Items: make([]deliverySummary, 0, min(len(page), limit))}
	if len(page) > limit {
		page = page[:limit]
		out.NextCursor = page[len(page)-1].Cursor().String()
	}
	secrets := map[string][]string{} // by subscription
	for _, d := range page {
		if d.LastError != "" || d.ExternalID != "" {
			s, ok := secrets[d.SubscriptionID]
			if !ok {
				s = h.storedSecrets(r.Context(), d.SubscriptionID)
				secrets[d.SubscriptionID] = s
			}
			scrubDelivery(&d, s)
		}
		out.Items = append(out.Items, deliverySummary{Delivery: d, AttemptCount: len(d.Attempts)})
	}
	return h.writeJSON(w, http.StatusOK, out)
}

func (h *Handler) getDelivery(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	d, err := h.client.Delivery(r.Context(), r.PathValue("deliveryId"))
	if err != nil {
		return err
	}
	return h.writeJSON(w, http.StatusOK, h.viewDelivery(r, d))
}

func (h *Handler) viewDelivery(r *http.Request, d outhook.Delivery) outhook.Delivery {
	scrubDelivery(&d, h.storedSecrets(r.Context(), d.SubscriptionID))
	if d.Attempts == nil {
		d.Attempts = []outhook.Attempt{}
	}
	return d
}

// redeliver sends a finished delivery again and answers 202 with the
// delivery as it stands once the redelivery is queued: pending, unless the
// attempt was quick enough to end first.
func (h *Handler) redeliver(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	if err := h.decodeBody(w, r, &struct{}{}, true); err != nil {
		return err
	}
	id := r.PathValue("deliveryId")
	if err := h.client.Redeliver(r.Context(), id); err != nil {
		return err
	}
	d, err := h.client.Delivery(r.Context(), id)
	if err != nil {
		return err
	}
	return h.writeJSON(w, http.StatusAccepted, h.viewDelivery(r, d))
}

// failedEventView is an outhook.FailedEvent in the API's JSON.
type failedEventView struct {
	MessageID string `json:"messageId"`
	HookID    string `json:"hookId"`
	Group     string `json:"group"`
	// Payload is the event's payload as emitted; PayloadBase64 holds it
	// instead when it is not JSON.
	Payload       json.RawMessage      `json:"payload,omitempty"`
	PayloadBase64 []byte               `json:"payloadBase64,omitempty"`
	EmittedAt     time.Time            `json:"emittedAt"`
	Attempts      int                  `json:"attempts"`
	Errors        []queue.AttemptError `json:"errors"`
}

func (h *Handler) listFailedEvents(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r, "limit"); err != nil {
		return err
	}
	limit, err := parseLimit(r, 50, 500)
	if err != nil {
		return err
	}
	evs, err := h.client.FailedEvents(r.Context(), limit)
	if err != nil {
		return fmt.Errorf("failed events: %w", err)
	}
	out := struct {
		Items []failedEventView `json:"items"`
	}{Items: make([]failedEventView, 0, len(evs))}
	for _, ev := range evs {
		v := failedEventView{MessageID: ev.MessageID, HookID: ev.HookID, Group: ev.Group,
			EmittedAt: ev.EmittedAt, Attempts: ev.Attempts, Errors: ev.Errors}
		if json.Valid(ev.Payload) {
			v.Payload = ev.Payload
		} else {
			v.PayloadBase64 = ev.Payload
		}
		if v.Errors == nil {
			v.Errors = []queue.AttemptError{}
		}
		out.Items = append(out.Items, v)
	}
	return h.writeJSON(w, http.StatusOK, out)
}

// replayRequest is the body of replayMessage.
type replayRequest struct {
	EventID string `json:"eventId"`
}

// replayResult is what replayMessage answers.
type replayResult struct {
	EventID    string   `json:"eventId"`
	Deliveries []string `json:"deliveries"`
}

// replayMessage sends an emitted event again to the subscriptions that
// select it now, as new deliveries (outhook.Client.Replay).
func (h *Handler) replayMessage(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	var body replayRequest
	if err := h.decodeBody(w, r, &body, true); err != nil {
		return err
	}
	res, err := h.client.Replay(r.Context(), r.PathValue("messageId"), body.EventID)
	if err != nil {
		return err
	}
	out := replayResult{EventID: res.EventID, Deliveries: res.Deliveries}
	if out.Deliveries == nil {
		out.Deliveries = []string{}
	}
	return h.writeJSON(w, http.StatusAccepted, out)
}
