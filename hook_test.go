package outhook_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/outhooktest"
	"github.com/stretchr/testify/require"
)

func TestNewHookIDs(t *testing.T) {
	for _, id := range []string{"incident.created", "started", "state.changed", "a-b_c.D9"} {
		h, err := outhook.NewHook[struct{}](id)
		require.NoError(t, err, id)
		require.Equal(t, id, h.ID())
	}
	for _, id := range []string{"", ".x", "x.", "a..b", "incident created", "incident/created", "incident.*", "é"} {
		_, err := outhook.NewHook[struct{}](id)
		require.ErrorIs(t, err, outhook.ErrInvalidID, id)
		var ie *outhook.IDError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, id, ie.ID)
		require.Contains(t, err.Error(), `"`+id+`"`, "the error names the ID")
	}
	require.Panics(t, func() { outhook.MustNewHook[struct{}]("bad id") })
}

func TestOnHookWorkQueueAndBroadcast(t *testing.T) {
	c, _ := setup(t, nil)
	var (
		mu        sync.Mutex
		workGot   []string
		castGot   []string
		failFirst atomic.Bool
	)
	failFirst.Store(true)
	require.NoError(t, outhook.OnHook(c, incidentCreated, func(ctx context.Context, p IncidentCreated) error {
		if failFirst.CompareAndSwap(true, false) {
			return errors.New("transient")
		}
		mu.Lock()
		defer mu.Unlock()
		workGot = append(workGot, p.IncidentID)
		return nil
	}, outhook.WorkQueue("audit-log")))
	require.NoError(t, outhook.OnHook(c, incidentCreated, func(ctx context.Context, p IncidentCreated) error {
		mu.Lock()
		defer mu.Unlock()
		castGot = append(castGot, p.IncidentID)
		return nil
	}, outhook.Broadcast()))

	emit(t, c, incidentCreated, sampleIncident("inc-1"))
	emit(t, c, incidentCreated, sampleIncident("inc-2"))
	outhooktest.WaitIdle(t, c)
	mu.Lock()
	defer mu.Unlock()
	require.ElementsMatch(t, []string{"inc-1", "inc-2"}, workGot, "each event once per group, after a retry")
	require.ElementsMatch(t, []string{"inc-1", "inc-2"}, castGot)
}

func TestOnHookHandlerExhaustedIsRecorded(t *testing.T) {
	c, _ := setup(t, &outhook.Config{HandlerRetry: outhooktest.NoDelay(2)})
	var runs atomic.Int32
	require.NoError(t, outhook.OnHook(c, incidentResolved, func(ctx context.Context, p IncidentResolved) error {
		runs.Add(1)
		panic("handler bug")
	}, outhook.WorkQueue("cache")))
	emit(t, c, incidentResolved, IncidentResolved{IncidentID: "inc-1", SystemIDs: []string{"s"}})
	outhooktest.WaitIdle(t, c)
	require.EqualValues(t, 2, runs.Load())
	failed, err := c.FailedEvents(context.Background(), 10)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Equal(t, "cache", failed[0].Group)
	require.Contains(t, failed[0].Errors[0].Error, "panicked: handler bug")
}

func TestOnHookErrors(t *testing.T) {
	c, _ := setup(t, nil)
	noop := func(context.Context, IncidentCreated) error { return nil }
	require.NoError(t, outhook.OnHook(c, incidentCreated, noop, outhook.WorkQueue("g")))
	require.ErrorIs(t, outhook.OnHook(c, incidentCreated, noop, outhook.WorkQueue("g")), outhook.ErrDuplicate)
	require.ErrorIs(t, outhook.OnHook(c, incidentCreated, noop, outhook.WorkQueue("bad group")), outhook.ErrInvalidID)
	require.ErrorIs(t, outhook.OnHook(c, incidentCreated, noop, outhook.WorkQueue("integration.x")), outhook.ErrInvalidID)
	require.Error(t, outhook.OnHook(c, incidentCreated, nil, outhook.WorkQueue("h")))
	require.ErrorIs(t, outhook.OnHook(c, outhook.Hook[IncidentCreated]{}, noop, outhook.WorkQueue("h")), outhook.ErrInvalidID)

	// The same hook ID with another payload type is refused.
	other := outhook.MustNewHook[IncidentResolved]("incident.created")
	err := outhook.OnHook(c, other, func(context.Context, IncidentResolved) error { return nil }, outhook.WorkQueue("h"))
	require.ErrorContains(t, err, "carries")
	require.ErrorContains(t, outhook.EmitHook(context.Background(), c, other, IncidentResolved{IncidentID: "x", SystemIDs: []string{"s"}}), "carries")
}

func TestHandlerMayEmitWhileStopDrains(t *testing.T) {
	reg := newIncidentRegistry(t)
	fake := outhooktest.NewDeliverer("fake")
	c, err := outhook.NewClient(&outhook.Config{Registry: reg, Deliverers: []outhook.Deliverer{fake},
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	_, err = c.CreateSubscription(context.Background(), outhook.Subscription{Events: []string{resolvedEvent}, DelivererID: "fake"})
	require.NoError(t, err)
	// A handler that chains: every created incident resolves one.
	var chainErr atomic.Value
	require.NoError(t, outhook.OnHook(c, incidentCreated, func(ctx context.Context, p IncidentCreated) error {
		err := outhook.EmitHook(ctx, c, incidentResolved, IncidentResolved{IncidentID: p.IncidentID, SystemIDs: p.SystemIDs})
		if err != nil {
			chainErr.Store(err)
		}
		return err
	}, outhook.WorkQueue("auto-resolve")))
	for i := range 20 {
		emit(t, c, incidentCreated, sampleIncident(fmt.Sprint("inc-", i)))
	}
	require.NoError(t, c.Start(context.Background()))
	require.NoError(t, c.Stop(context.Background()))
	require.Nil(t, chainErr.Load())
	require.Len(t, fake.Delivered(), 20, "events emitted by handlers during the drain are delivered")
	require.ErrorIs(t, outhook.EmitHook(context.Background(), c, incidentCreated, sampleIncident("late")), outhook.ErrClosed)
}
