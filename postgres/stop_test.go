package postgres_test

import (
	"testing"

	"github.com/outhook/outhook/internal/lifecycletest"
)

// TestStopUnderLoad: Stop during heavy load returns within its deadline
// with nothing in progress, and a node started afterwards on the same
// schema makes every delivery left, none twice (issue 7, item 7).
func TestStopUnderLoad(t *testing.T) {
	lifecycletest.StopUnderLoad(t, lifecycletest.Options{NewParts: proofParts(proofSchema(t)), Durable: true})
}
