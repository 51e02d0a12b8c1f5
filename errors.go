package outhook

import (
	"errors"
	"fmt"

	"github.com/outhook/outhook/queue"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrClosed is returned by calls on a client after Stop.
	ErrClosed = errors.New("outhook: client closed")
	// ErrNotFound is matched by errors about a subscription, delivery or
	// event that does not exist.
	ErrNotFound = errors.New("outhook: not found")
	// ErrInvalidID is matched by every *IDError.
	ErrInvalidID = errors.New("outhook: invalid ID")
	// ErrInvalidSubscription is matched by every *SubscriptionError.
	ErrInvalidSubscription = errors.New("outhook: invalid subscription")
	// ErrDuplicate is matched by errors about an ID that is already taken.
	ErrDuplicate = errors.New("outhook: duplicate")
	// ErrQueueFull is matched by errors about events a queue cannot take
	// for lack of room. The in-memory queue returns it only for a batch
	// larger than its capacity; when it is merely full, EmitHook waits for
	// room until its context is done. It is queue.ErrQueueFull.
	ErrQueueFull = queue.ErrQueueFull
)

// IDError reports a hook, plugin, event or worker-group ID that is not well
// formed. IDs are dot-separated segments of [a-zA-Z0-9_-].
type IDError struct {
	Kind   string // "hook", "plugin", "event", "worker group", ...
	ID     string
	Reason string
}

func (e *IDError) Error() string {
	return fmt.Sprintf("outhook: invalid %s ID %q: %s", e.Kind, e.ID, e.Reason)
}

// Is reports whether target is ErrInvalidID.
func (e *IDError) Is(target error) bool { return target == ErrInvalidID }

// SubscriptionError reports what is wrong with a subscription that was to be
// created or updated. Field is the subscription field at fault ("events",
// "delivererId", "config.url", "filter.field", ...).
type SubscriptionError struct {
	Field  string
	Reason string
	Err    error // the underlying error, such as a *ConfigError, if any
}

func (e *SubscriptionError) Error() string {
	msg := "outhook: invalid subscription: " + e.Field + ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is ErrInvalidSubscription.
func (e *SubscriptionError) Is(target error) bool { return target == ErrInvalidSubscription }

// Unwrap returns the underlying error.
func (e *SubscriptionError) Unwrap() error { return e.Err }

// notFound returns an error matching ErrNotFound.
func notFound(kind, id string) error {
	return fmt.Errorf("%w: %s %q", ErrNotFound, kind, id)
}
