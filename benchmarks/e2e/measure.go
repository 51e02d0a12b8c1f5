package main

import (
	"math"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"syscall"
	"time"
)

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mallocs is the number of heap objects allocated so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// heapInuseAfterGC collects garbage and returns HeapInuse and HeapAlloc.
func heapInuseAfterGC() (inuse, alloc uint64) {
	runtime.GC()
	runtime.GC() // a second cycle frees what the first one's finalizers released
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.HeapAlloc
}

// heapSampler samples HeapInuse every few milliseconds until stopped and
// keeps the peak. It reads runtime/metrics, which does not stop the world
// as runtime.ReadMemStats does: HeapInuse is heap objects plus the unused
// part of in-use spans.
type heapSampler struct {
	stopc chan struct{}
	wg    sync.WaitGroup
	peak  uint64
}

func startHeapSampler() *heapSampler {
	s := &heapSampler{stopc: make(chan struct{})}
	s.sample()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stopc:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

var heapMetrics = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes"}

func (s *heapSampler) sample() {
	m := []metrics.Sample{{Name: heapMetrics[0]}, {Name: heapMetrics[1]}}
	metrics.Read(m)
	var v uint64
	for _, x := range m {
		if x.Value.Kind() == metrics.KindUint64 {
			v += x.Value.Uint64()
		}
	}
	s.peak = max(s.peak, v)
}

// stop ends the sampling and returns the peak HeapInuse in bytes.
func (s *heapSampler) stop() uint64 {
	close(s.stopc)
	s.wg.Wait()
	s.sample()
	return s.peak
}

// usage is what a phase cost the process.
type usage struct {
	cpu      time.Duration
	mallocs  uint64
	peakHeap uint64
}

// meter measures a phase's CPU time, allocations and peak heap.
type meter struct {
	cpu0     time.Duration
	mallocs0 uint64
	sampler  *heapSampler
}

func startMeter() *meter {
	// Two cycles: what the previous phase left in sync.Pool victim caches
	// survives the first (a stopped outhook client was seen to, now and
	// then, with its store).
	runtime.GC()
	runtime.GC()
	m := &meter{mallocs0: mallocs()}
	m.sampler = startHeapSampler()
	m.cpu0 = cpuTime()
	return m
}

func (m *meter) stop() usage {
	cpu := cpuTime() - m.cpu0
	peak := m.sampler.stop()
	return usage{cpu: cpu, mallocs: mallocs() - m.mallocs0, peakHeap: peak}
}

// percentile returns the p-th percentile (0 < p <= 1) of sorted values by
// the nearest-rank method.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(lat)
	return percentile(lat, 0.50), percentile(lat, 0.99)
}

// round keeps d significant decimals of v.
func round(v float64, d int) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow(10, float64(d))
	return math.Round(v*p) / p
}
