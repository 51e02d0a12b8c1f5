package outhook

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
)

// TransformFunc turns a hook's payload into the document subscribers
// receive: to add computed fields, rename fields for outside consumers,
// redact sensitive values or flatten nested structures.
//
// It runs in the integration subscriber, once per event whatever the number
// of subscriptions, before routing; subscription filters see its output. An
// error or a panic fails the processing of that event, which is recorded and
// retried according to Config.HandlerRetry.
//
// Like an OnHook handler, it receives a copy of the payload decoded from the
// JSON that EmitHook encoded: fields JSON does not carry arrive empty.
type TransformFunc[T any] func(payload T) (map[string]any, error)

// TransformError reports that an event's TransformPayload failed or
// panicked.
type TransformError struct {
	EventID string
	Err     error
	// Stack is set when the transform panicked.
	Stack string
}

func (e *TransformError) Error() string {
	return fmt.Sprintf("outhook: transform of event %q: %v", e.EventID, e.Err)
}

// Unwrap returns the transform's error.
func (e *TransformError) Unwrap() error { return e.Err }

// eraseTransform wraps fn so that it takes and returns JSON, and turns a
// panic into a *TransformError.
func eraseTransform[T any](eventID string, fn TransformFunc[T]) func([]byte) (json.RawMessage, error) {
	if fn == nil {
		return nil
	}
	return func(raw []byte) (out json.RawMessage, err error) {
		var payload T
		if err := json.Unmarshal(raw, &payload); err != nil {
			return nil, poison(&TransformError{EventID: eventID, Err: fmt.Errorf("decode payload: %w", err)})
		}
		defer func() {
			if r := recover(); r != nil {
				out, err = nil, &TransformError{EventID: eventID, Err: fmt.Errorf("panic: %v", r), Stack: string(debug.Stack())}
			}
		}()
		doc, err := fn(payload)
		if err != nil {
			return nil, &TransformError{EventID: eventID, Err: err}
		}
		out, err = json.Marshal(doc)
		if err != nil {
			return nil, &TransformError{EventID: eventID, Err: fmt.Errorf("encode result: %w", err)}
		}
		return out, nil
	}
}
