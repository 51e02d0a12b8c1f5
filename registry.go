package outhook

import (
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"

	"github.com/outhook/outhook/internal/ident"
)

// Categories used by convention to group events in a UI. Events may use any
// category; an event without one is listed under CategoryUncategorized.
const (
	CategoryIncidents     = "Incidents"     // unplanned outages and issues
	CategoryMaintenance   = "Maintenance"   // scheduled maintenance windows
	CategoryHealth        = "Health"        // health check state changes
	CategoryCatalog       = "Catalog"       // system and group changes
	CategoryAuth          = "Auth"          // user and authentication events
	CategoryUncategorized = "Uncategorized" // events registered without a category
)

// wellKnownCategories fixes the order of the conventional categories.
var wellKnownCategories = [...]string{CategoryIncidents, CategoryMaintenance, CategoryHealth, CategoryCatalog, CategoryAuth}

// PluginMetadata describes the plugin that owns events. PluginID namespaces
// every event the plugin registers.
type PluginMetadata struct {
	// PluginID is required and follows the hook ID rules, e.g. "incident" or
	// "healthcheck-http".
	PluginID    string `json:"pluginId"`
	DisplayName string `json:"displayName,omitempty"`
	Description string `json:"description,omitempty"`
	Version     string `json:"version,omitempty"`
}

// EventDefinition exposes a hook as an integration event that subscriptions
// can select.
type EventDefinition[T any] struct {
	// Hook is the hook whose payloads become this event. Required.
	Hook Hook[T]
	// DisplayName is the human-readable name shown in a UI. Required.
	DisplayName string
	// Description says when the event fires.
	Description string
	// Category groups events in a UI; empty means "Uncategorized".
	Category string
	// TransformPayload, if set, turns the hook's payload into what
	// subscribers receive. It runs once per event, before routing.
	TransformPayload TransformFunc[T]
}

// Event is a registered integration event, as listed by an EventRegistry.
type Event struct {
	// ID is the plugin ID, a dot, and the hook ID: plugin "incident" and hook
	// "incident.created" give "incident.incident.created". No prefix is
	// stripped.
	ID          string         `json:"id"`
	HookID      string         `json:"hookId"`
	Plugin      PluginMetadata `json:"plugin"`
	DisplayName string         `json:"displayName"`
	Description string         `json:"description,omitempty"`
	Category    string         `json:"category"`
	// Schema is the JSON Schema (draft 2020-12) of the hook's payload type.
	// Subscribers receive it as is unless the event has a transform.
	Schema json.RawMessage `json:"schema"`
	// Transformed reports whether the event has a TransformPayload.
	Transformed bool `json:"transformed"`
}

// eventRecord is an Event with its generic parts erased: the one seam past
// which nothing is generic.
type eventRecord struct {
	Event
	typ reflect.Type
	// transform decodes a raw payload of the hook's type, transforms it, and
	// encodes the result. nil when the event has no transform.
	transform func(raw []byte) (json.RawMessage, error)
}

// Category is a group of events, as returned by EventRegistry.Categories.
type Category struct {
	Name   string  `json:"name"`
	Events []Event `json:"events"`
}

// EventRegistry holds the integration events of an application. It is safe
// for concurrent use. Events may be registered before or after the clients
// that use the registry start.
type EventRegistry struct {
	mu       sync.RWMutex
	events   map[string]*eventRecord
	watchers []func(*eventRecord)
	schemas  schemaCache
}

// NewEventRegistry returns an empty registry.
func NewEventRegistry() *EventRegistry {
	return &EventRegistry{events: make(map[string]*eventRecord)}
}

// RegisterEvent adds def to r as an event of the given plugin and returns it.
// The event ID is plugin.PluginID + "." + def.Hook.ID(). It is an error to
// register an ID twice, to leave DisplayName empty, or to pass a plugin ID
// that is not well formed; the registry is unchanged after an error.
func RegisterEvent[T any](r *EventRegistry, def EventDefinition[T], plugin PluginMetadata) (Event, error) {
	if r == nil {
		return Event{}, fmt.Errorf("outhook: RegisterEvent: registry is nil")
	}
	if err := def.Hook.check(); err != nil {
		return Event{}, err
	}
	if why := ident.Check(plugin.PluginID); why != "" {
		return Event{}, &IDError{Kind: "plugin", ID: plugin.PluginID, Reason: why}
	}
	id := plugin.PluginID + "." + def.Hook.ID()
	if why := ident.Check(id); why != "" {
		return Event{}, &IDError{Kind: "event", ID: id, Reason: why}
	}
	if def.DisplayName == "" {
		return Event{}, fmt.Errorf("outhook: event %q: DisplayName is required", id)
	}
	typ := reflect.TypeFor[T]()
	schema, err := r.schemas.get(typ)
	if err != nil {
		return Event{}, fmt.Errorf("outhook: event %q: JSON Schema of %v: %w", id, typ, err)
	}
	category := def.Category
	if category == "" {
		category = CategoryUncategorized
	}
	rec := &eventRecord{
		Event: Event{
			ID:          id,
			HookID:      def.Hook.ID(),
			Plugin:      plugin,
			DisplayName: def.DisplayName,
			Description: def.Description,
			Category:    category,
			Schema:      schema,
			Transformed: def.TransformPayload != nil,
		},
		typ:       typ,
		transform: eraseTransform(id, def.TransformPayload),
	}

	r.mu.Lock()
	if _, dup := r.events[id]; dup {
		r.mu.Unlock()
		return Event{}, fmt.Errorf("%w: event %q is already registered", ErrDuplicate, id)
	}
	r.events[id] = rec
	watchers := slices.Clone(r.watchers)
	r.mu.Unlock()

	// Watchers run outside the lock, in registration order; a client that
	// started watching after this event was added sees it in its snapshot.
	for _, w := range watchers {
		w(rec)
	}
	return rec.Event, nil
}

// MustRegisterEvent is RegisterEvent for application start-up code: it
// panics on error.
func MustRegisterEvent[T any](r *EventRegistry, def EventDefinition[T], plugin PluginMetadata) Event {
	ev, err := RegisterEvent(r, def, plugin)
	if err != nil {
		panic(err)
	}
	return ev
}

// Events returns every registered event, ordered by ID.
func (r *EventRegistry) Events() []Event {
	r.mu.RLock()
	out := make([]Event, 0, len(r.events))
	for _, rec := range r.events {
		out = append(out, rec.Event)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Event) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Event returns the event with the given ID.
func (r *EventRegistry) Event(id string) (Event, bool) {
	rec := r.lookup(id)
	if rec == nil {
		return Event{}, false
	}
	return rec.Event, true
}

// Categories groups the registered events by category: the conventional
// categories first (Incidents, Maintenance, Health, Catalog, Auth), then the
// others by name, then Uncategorized. Events within a category are ordered
// by ID. Empty categories are omitted.
func (r *EventRegistry) Categories() []Category {
	byName := map[string][]Event{}
	for _, ev := range r.Events() {
		byName[ev.Category] = append(byName[ev.Category], ev)
	}
	rank := func(name string) int {
		if i := slices.Index(wellKnownCategories[:], name); i >= 0 {
			return i
		}
		if name == CategoryUncategorized {
			return len(wellKnownCategories) + 1
		}
		return len(wellKnownCategories)
	}
	out := make([]Category, 0, len(byName))
	for name, evs := range byName {
		out = append(out, Category{Name: name, Events: evs})
	}
	slices.SortFunc(out, func(a, b Category) int {
		return cmp.Or(cmp.Compare(rank(a.Name), rank(b.Name)), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func (r *EventRegistry) lookup(id string) *eventRecord {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.events[id]
}

// watch calls fn for every event registered so far and for every event
// registered from now on.
func (r *EventRegistry) watch(fn func(*eventRecord)) {
	r.mu.Lock()
	existing := make([]*eventRecord, 0, len(r.events))
	for _, rec := range r.events {
		existing = append(existing, rec)
	}
	r.watchers = append(r.watchers, fn)
	r.mu.Unlock()
	slices.SortFunc(existing, func(a, b *eventRecord) int { return cmp.Compare(a.ID, b.ID) })
	for _, rec := range existing {
		fn(rec)
	}
}
