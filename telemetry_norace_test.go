//go:build !race

// Allocation counts are checked without the race detector only: it
// allocates on its own.

package outhook_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/memqueue"
)

// emitHookAllocs is what EmitHook allocates with one listening worker
// group and tracing off (BenchmarkEmitHookQueued): the trace context costs
// nothing there.
const emitHookAllocs = 15

func TestEmitHookAllocsTracingOff(t *testing.T) {
	q, err := memqueue.New(&memqueue.Config{Capacity: 1 << 20, Logger: quiet})
	require.NoError(t, err)
	c, err := outhook.NewClient(&outhook.Config{Queue: q, Logger: quiet})
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Stop(context.Background())) }()
	require.NoError(t, outhook.OnHook(c, incidentCreated, func(context.Context, IncidentCreated) error { return nil },
		outhook.WorkQueue("noop")))
	ctx := context.Background()
	p := sampleIncident("inc-1", "sys-1", "sys-2")
	allocs := testing.AllocsPerRun(1000, func() {
		if err := outhook.EmitHook(ctx, c, incidentCreated, p); err != nil {
			t.Fatal(err)
		}
	})
	require.LessOrEqual(t, allocs, float64(emitHookAllocs), "allocations of EmitHook with tracing off")
}
