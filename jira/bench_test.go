package jira_test

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkDeliver measures one delivery (search, then creation) against a
// loopback stand-in for Jira.
func BenchmarkDeliver(b *testing.B) {
	f := newFakeJira(b)
	d := newDeliverer(b)
	req := request(config(b, f.URL()), `{"title":"Database down","severity":"critical","systemIds":["db-1","db-2"]}`)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := *req
		r.DeliveryID = fmt.Sprintf("dlv_bench%d", i)
		if _, err := d.Deliver(ctx, &r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}
