package natsqueue

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// progressMsg counts InProgress calls on a signal channel.
type progressMsg struct {
	jetstream.Msg
	progress chan struct{}
}

func (m *progressMsg) InProgress() error {
	select {
	case m.progress <- struct{}{}:
	default:
	}
	return nil
}

// TestKeepAliveCountsFromReceipt: the first InProgress comes half an
// AckWait after the message was received, not after the handler started:
// a message whose handler starts late (a slow ledger read, a starved
// process) has its lease renewed at once. The fault soak saw a delivery
// run twice once, under heavy load with a short AckWait, which this gap
// would explain.
func TestKeepAliveCountsFromReceipt(t *testing.T) {
	m := &progressMsg{progress: make(chan struct{}, 1)}
	ka := startKeepAlive(m, time.Hour, time.Now().Add(-2*time.Hour))
	defer ka.stop()
	select {
	case <-m.progress:
	case <-time.After(30 * time.Second):
		t.Fatal("no InProgress for a message received two half-leases ago")
	}

	fresh := &progressMsg{progress: make(chan struct{}, 1)}
	ka2 := startKeepAlive(fresh, time.Hour, time.Now())
	ka2.stop()
	select {
	case <-fresh.progress:
		t.Fatal("InProgress for a message just received")
	default:
	}
}
