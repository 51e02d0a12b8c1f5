package outhook_test

import (
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/storetest"
)

// TestMemoryStoreConformance runs the Store conformance suite, which every
// store runs, against the in-memory store.
func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) outhook.Store {
		return outhook.NewMemoryStore(nil)
	})
}
