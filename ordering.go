package outhook

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"time"

	"github.com/outhook/outhook/internal/jsonscalar"
)

// DefaultOrderingSettle is the default Config.OrderingSettle.
const DefaultOrderingSettle = time.Second

// maxOrderingKeyLen bounds the ordering keys deliveries keep: a longer
// value is kept as "sha256:" and its hash.
const maxOrderingKeyLen = 200

// orderingPath checks an event's OrderingKey and splits it at its dots.
// Without a transform, the payload is typ's JSON encoding: the path must
// name a field of typ that holds a string, a number or a boolean (or an
// interface, checked per event).
func orderingPath(key string, typ reflect.Type, transformed bool) ([]string, error) {
	if key == "" {
		return nil, nil
	}
	if len(key) > 256 {
		return nil, fmt.Errorf("path is %d bytes long, at most 256", len(key))
	}
	path := strings.Split(key, ".")
	for _, seg := range path {
		if seg == "" {
			return nil, fmt.Errorf("%q has an empty segment", key)
		}
	}
	if transformed {
		return path, nil
	}
	t := typ
	for i, seg := range path {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if encodesItself(t) {
			return path, nil // its JSON is known per event only
		}
		switch t.Kind() {
		case reflect.Struct:
			f, ok := jsonField(t, seg)
			if !ok {
				return nil, fmt.Errorf("%q: %v has no JSON field %q", key, t, seg)
			}
			t = f.Type
		case reflect.Map:
			if t.Key().Kind() != reflect.String {
				return nil, fmt.Errorf("%q: %q is in a %v, whose keys are not strings", key, seg, t)
			}
			t = t.Elem()
		case reflect.Interface:
			return path, nil // known per event only
		default:
			return nil, fmt.Errorf("%q: %q is not an object: %s is a %v", key, seg, strings.Join(path[:i], "."), t)
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if encodesItself(t) {
		return path, nil // a UUID or a time.Time encodes as a string
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Interface,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return path, nil
	}
	return nil, fmt.Errorf("%q is a %v: an ordering key must be a string, a number or a boolean", key, t)
}

// encodesItself reports whether t (or *t) chooses its own JSON encoding,
// as a json.Marshaler or an encoding.TextMarshaler does.
func encodesItself(t reflect.Type) bool {
	for _, u := range []reflect.Type{t, reflect.PointerTo(t)} {
		if u.Implements(jsonMarshaler) || u.Implements(textMarshaler) {
			return true
		}
	}
	return false
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// jsonField finds the field of struct type t that encoding/json encodes
// under name, looking into embedded structs as encoding/json does (without
// its rules for conflicting names).
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" && !strings.HasPrefix(f.Tag.Get("json"), "-,") {
			continue
		}
		if f.Anonymous && tag == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if sf, ok := jsonField(ft, name); ok {
					return sf, true
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// orderingValue returns the ordering key of a decoded payload: the value
// at path as text, or "" when it is missing or not a string, number or
// boolean.
func orderingValue(doc any, path []string) string {
	v := doc
	for _, seg := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		if v, ok = obj[seg]; !ok {
			return ""
		}
	}
	s, ok := jsonscalar.Text(v)
	if !ok {
		return ""
	}
	if len(s) > maxOrderingKeyLen {
		sum := sha256.Sum256([]byte(s))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	return s
}

// orderingWait returns how long an ordered delivery must wait for its
// turn: zero when its event has settled and it is the first pending
// delivery of its key to its subscription.
func (c *Client) orderingWait(ctx context.Context, d *deliveryState, lim *subLimiter, now time.Time) (time.Duration, error) {
	if age := now.Sub(d.OccurredAt); age < c.orderingSettle {
		return c.orderingSettle - age, nil
	}
	head, err := c.store.FirstPending(ctx, d.SubscriptionID, d.OrderingKey)
	if err != nil || head == nil || head.ID == d.ID {
		return 0, err
	}
	if wait := head.NextAttemptAt.Sub(now); wait > 10*time.Millisecond {
		// The head is waiting for a retry: come back just after it, or
		// in a minute at the latest, in case it ends some other way.
		return min(wait, time.Minute) + rand.N(10*time.Millisecond), nil
	}
	// The head is being attempted: come back when the key's turn to ask
	// comes, about an attempt's time after the follower before.
	return lim.laneWait(d.OrderingKey, now), nil
}
