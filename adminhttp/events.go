package adminhttp

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/outhook/outhook"
)

// eventView is an event as the API lists it.
type eventView struct {
	outhook.Event
	// PropertyPaths lists the payload's properties (see PropertyPaths). For
	// an event with a transform (Transformed), they are those of the hook's
	// payload, which the transform may change.
	PropertyPaths          []string `json:"propertyPaths"`
	PropertyPathsTruncated bool     `json:"propertyPathsTruncated,omitempty"`
}

type categoryView struct {
	Name   string      `json:"name"`
	Events []eventView `json:"events"`
}

func viewEvent(ev outhook.Event) (eventView, error) {
	paths, truncated, err := PropertyPaths(ev.Schema)
	if err != nil {
		return eventView{}, fmt.Errorf("event %q: %w", ev.ID, err)
	}
	if paths == nil {
		paths = []string{}
	}
	return eventView{Event: ev, PropertyPaths: paths, PropertyPathsTruncated: truncated}, nil
}

func (h *Handler) listEvents(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	cats := h.client.Registry().Categories()
	out := struct {
		Categories []categoryView `json:"categories"`
	}{Categories: make([]categoryView, 0, len(cats))}
	for _, c := range cats {
		cv := categoryView{Name: c.Name, Events: make([]eventView, 0, len(c.Events))}
		for _, ev := range c.Events {
			v, err := viewEvent(ev)
			if err != nil {
				return err
			}
			cv.Events = append(cv.Events, v)
		}
		out.Categories = append(out.Categories, cv)
	}
	return h.writeJSON(w, http.StatusOK, out)
}

func (h *Handler) getEvent(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("eventId")
	ev, ok := h.client.Registry().Event(id)
	if !ok {
		return fmt.Errorf("%w: event %q", outhook.ErrNotFound, id)
	}
	v, err := viewEvent(ev)
	if err != nil {
		return err
	}
	return h.writeJSON(w, http.StatusOK, v)
}

type delivererView struct {
	ID           string          `json:"id"`
	ConfigSchema json.RawMessage `json:"configSchema"`
}

func (h *Handler) listDeliverers(w http.ResponseWriter, r *http.Request) error {
	if err := checkQuery(r); err != nil {
		return err
	}
	out := struct {
		Items []delivererView `json:"items"`
	}{Items: make([]delivererView, 0, len(h.deliverers))}
	for _, d := range h.deliverers {
		schema := d.ConfigSchema()
		if !json.Valid(schema) {
			schema = json.RawMessage(`{}`)
		}
		out.Items = append(out.Items, delivererView{ID: d.ID(), ConfigSchema: schema})
	}
	return h.writeJSON(w, http.StatusOK, out)
}
