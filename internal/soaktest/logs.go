package soaktest

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
)

// logCounter is a slog.Handler that counts the warnings and errors of the
// client and the queue by message, and keeps the first of each, so that
// the report can say what the backend complained about during the run.
type logCounter struct {
	mu     sync.Mutex
	counts map[string]int    // by level and message
	first  map[string]string // the attributes of the first record, by level and message
}

func newLogCounter() *logCounter {
	return &logCounter{counts: map[string]int{}, first: map[string]string{}}
}

func (h *logCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	key := r.Level.String() + " " + r.Message
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[key]++
	if h.counts[key] == 1 {
		var b strings.Builder
		r.Attrs(func(a slog.Attr) bool {
			if b.Len() < 400 {
				fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
			}
			return true
		})
		h.first[key] = b.String()
	}
	return nil
}

// WithAttrs and WithGroup drop the attributes and groups: the counts are
// by message.
func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCounter) WithGroup(string) slog.Handler      { return h }

// routine are the messages logged in the normal course of a soak: every
// failed attempt is logged, and so is every delivery abandoned after the
// 410.
var routine = map[string]bool{
	"WARN outhook: delivery attempt failed":       true,
	"WARN outhook: subscription disabled":         true,
	"INFO outhook: delivery abandoned":            true,
	"WARN outhook: cannot emit operational event": false,
}

// String lists the counts, with the first record of each message that is
// not routine.
func (h *logCounter) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.counts) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, key := range slices.Sorted(maps.Keys(h.counts)) {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%q × %d", key, h.counts[key])
		if !routine[key] {
			fmt.Fprintf(&b, " (first:%s)", h.first[key])
		}
	}
	return b.String()
}

// unexpected returns the count of records that are not routine.
func (h *logCounter) unexpected() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for key, c := range h.counts {
		if !routine[key] {
			n += c
		}
	}
	return n
}
