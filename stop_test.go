package outhook_test

import (
	"context"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/internal/clustertest"
	"github.com/outhook/outhook/internal/lifecycletest"
	"github.com/outhook/outhook/memqueue"
)

// TestStopUnderLoad: on the in-memory queue, Stop during heavy load
// drains it within its deadline: every delivery is made, once, by the time
// it returns (issue 7, item 7).
func TestStopUnderLoad(t *testing.T) {
	lifecycletest.StopUnderLoad(t, lifecycletest.Options{NewParts: func(context.Context, clustertest.NodeConfig) (clustertest.Parts, error) {
		q, err := memqueue.New(nil)
		if err != nil {
			return clustertest.Parts{}, err
		}
		return clustertest.Parts{Queue: q, Store: outhook.NewMemoryStore(nil)}, nil
	}, DrainsAll: true})
}
