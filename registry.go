package outhook

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
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
	// OrderingKey, if set, is the path of a payload field, with dots
	// between the names of nested objects ("incidentId",
	// "incident.id"), in the payload as subscribers receive it (after
	// TransformPayload). The deliveries to one subscription whose payloads
	// have the same value there (a string, number or boolean) are made one
	// at a time, in emit order, and a delivery that keeps failing holds up
	// only the later ones of its own key. Events without the field, or with
	// another kind of value, are not ordered. Off (empty) by default. See
	// Ordering keys in the package documentation.
	//
	// Without a transform the path must name a field of T, by its JSON
	// name; with one it is checked only for its form.
	OrderingKey string
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
	// OrderingKey is the path of the payload field whose value orders
	// deliveries (EventDefinition.OrderingKey); empty when they are not.
	OrderingKey string `json:"orderingKey,omitempty"`
}

// eventRecord is an Event with its generic parts erased: the one seam past
// which nothing is generic.
type eventRecord struct {
	Event
	typ reflect.Type
	// transform decodes a raw payload of the hook's type, transforms it, and
	// encodes the result. nil when the event has no transform.
	transform func(raw []byte) (json.RawMessage, error)
	// ordering is OrderingKey split at its dots; nil when not ordered.
	ordering []string
}

// Category is a group of events, as returned by EventRegistry.Categories.
type Category struct {
	Name   string  `json:"name"`
	Events []Event `json:"events"`
}

// EventRegistry holds the integration events of an application. It is safe
// for concurrent use, and its zero value is an empty registry ready to use.
// Events may be registered before or after the clients that use the registry
// start.
//
// The registry also holds the payload type of every hook ID it has seen,
// from events and from OnHook listeners of its clients: one hook ID carries
// one Go type, and a registration that disagrees is refused.
type EventRegistry struct {
	mu        sync.RWMutex
	events    map[string]*eventRecord
	hookTypes map[string]reflect.Type
	watchers  map[uint64]func(*eventRecord)
	watchSeq  uint64
	schemas   schemaCache
}

// NewEventRegistry returns an empty registry.
func NewEventRegistry() *EventRegistry { return &EventRegistry{} }

// claimHookType records that hookID carries typ, or reports the type it
// already carries. r.mu must be held for writing.
func (r *EventRegistry) claimHookType(hookID string, typ reflect.Type) error {
	if prev, ok := r.hookTypes[hookID]; ok {
		if prev != typ {
			return fmt.Errorf("outhook: hook %q carries %v, not %v", hookID, prev, typ)
		}
		return nil
	}
	if r.hookTypes == nil {
		r.hookTypes = map[string]reflect.Type{}
	}
	r.hookTypes[hookID] = typ
	return nil
}

// claimHook is claimHookType for OnHook listeners.
func (r *EventRegistry) claimHook(hookID string, typ reflect.Type) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.claimHookType(hookID, typ)
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
	return registerEvent(r, def, plugin, plugin.PluginID+"."+def.Hook.ID(), nil)
}

// registerEvent registers def under the event ID id. When check is not nil,
// it runs with the registry locked, before anything changes, given the
// event already registered under id (nil if none): an error refuses the
// registration, and (nil, true) accepts the existing event instead.
func registerEvent[T any](r *EventRegistry, def EventDefinition[T], plugin PluginMetadata, id string,
	check func(existing *eventRecord) (keep bool, err error)) (Event, error) {
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
	ordering, err := orderingPath(def.OrderingKey, typ, def.TransformPayload != nil)
	if err != nil {
		return Event{}, fmt.Errorf("outhook: event %q: OrderingKey: %w", id, err)
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
			OrderingKey: def.OrderingKey,
		},
		typ:       typ,
		transform: eraseTransform(id, def.TransformPayload),
		ordering:  ordering,
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if check != nil {
		keep, err := check(r.events[id])
		if err != nil {
			return Event{}, err
		}
		if keep {
			return r.events[id].Event, nil
		}
	}
	if prev, dup := r.events[id]; dup {
		if isOperationalRecord(prev) {
			return Event{}, fmt.Errorf("%w: event %q is one of outhook's own operational events (plugin %q), registered by the clients that use this registry: choose another plugin ID",
				ErrDuplicate, id, OperationalPluginID)
		}
		return Event{}, fmt.Errorf("%w: event %q is already registered", ErrDuplicate, id)
	}
	if err := r.claimHookType(rec.HookID, typ); err != nil {
		return Event{}, fmt.Errorf("outhook: event %q: %w", id, err)
	}
	if r.events == nil {
		r.events = map[string]*eventRecord{}
	}
	r.events[id] = rec
	// Watchers (the clients using this registry) start routing the event
	// before RegisterEvent returns, under the lock so that a client that
	// starts watching concurrently sees the event exactly once.
	for _, id := range slices.Sorted(maps.Keys(r.watchers)) {
		r.watchers[id](rec)
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
// registered from now on, until unwatch is called with the returned token.
// fn runs with the registry locked and must not call back into it.
func (r *EventRegistry) watch(fn func(*eventRecord)) (token uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range slices.Sorted(maps.Keys(r.events)) {
		fn(r.events[id])
	}
	if r.watchers == nil {
		r.watchers = map[uint64]func(*eventRecord){}
	}
	r.watchSeq++
	r.watchers[r.watchSeq] = fn
	return r.watchSeq
}

// unwatch stops calls to the watcher with the given token.
func (r *EventRegistry) unwatch(token uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.watchers, token)
}
