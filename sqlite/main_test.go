package sqlite_test

import (
	"testing"

	"github.com/outhook/outhook/internal/clustertest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if clustertest.IsChild() {
		// The restart proof's node in a process of its own (proof_test.go).
		clustertest.RunChild(proofParts(clustertest.Getenv(envProofPath)))
	}
	goleak.VerifyTestMain(m)
}
