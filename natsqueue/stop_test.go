package natsqueue_test

import (
	"testing"

	"github.com/outhook/outhook/internal/lifecycletest"
	"github.com/outhook/outhook/internal/servicetest"
)

// TestStopUnderLoad: Stop during heavy load returns within its deadline
// with nothing in progress, and a node started afterwards on the same
// stream and store makes every delivery left, none twice (issue 7,
// item 7).
func TestStopUnderLoad(t *testing.T) {
	url := servicetest.NATSURL(t)
	lifecycletest.StopUnderLoad(t, lifecycletest.Options{NewParts: proofParts(url, newStream(t), proofStore(t)), Durable: true})
}
