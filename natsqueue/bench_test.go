package natsqueue_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outhook/outhook/natsqueue"
	"github.com/outhook/outhook/queue"
)

// BenchmarkThroughput measures jobs per second through one queue: Enqueue,
// a pull, a no-op handler and the acknowledgement, each b.N times. "batch"
// enqueues 100 jobs a call (published asynchronously, acknowledgements
// awaited together); "single" enqueues one job a call from 16 goroutines,
// as concurrent EmitHook calls do.
func BenchmarkThroughput(b *testing.B) {
	for _, mode := range []string{"batch", "single"} {
		for _, workers := range []int{16, 64} {
			b.Run(fmt.Sprintf("%s/workers=%d", mode, workers), func(b *testing.B) {
				benchThroughput(b, mode, workers)
			})
		}
	}
}

func benchThroughput(b *testing.B, mode string, workers int) {
	stream := newStream(b)
	q, _ := newQueue(b, natsqueue.Config{Stream: stream, MaxWorkers: workers})
	var handled atomic.Int64
	all := make(chan struct{})
	n := int64(b.N)
	require.NoError(b, q.Subscribe("bench", func(context.Context, *queue.Job) queue.Result {
		if handled.Add(1) == n {
			close(all)
		}
		return queue.Result{}
	}, queue.GroupOptions{}))
	start(b, q)
	payload := []byte(`{"n":42}`)
	ctx := context.Background()
	b.ResetTimer()
	switch mode {
	case "batch":
		const batch = 100
		for i := 0; i < b.N; i += batch {
			jobs := make([]*queue.Job, 0, batch)
			for k := i; k < min(i+batch, b.N); k++ {
				jobs = append(jobs, &queue.Job{ID: fmt.Sprint("j", k), Group: "bench", Payload: payload})
			}
			if err := q.Enqueue(ctx, jobs...); err != nil {
				b.Fatal(err)
			}
		}
	case "single":
		const senders = 16
		var next atomic.Int64
		var wg sync.WaitGroup
		for range senders {
			wg.Go(func() {
				for {
					k := next.Add(1) - 1
					if k >= n {
						return
					}
					if err := q.Enqueue(ctx, &queue.Job{ID: fmt.Sprint("j", k), Group: "bench", Payload: payload}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	<-all
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}
