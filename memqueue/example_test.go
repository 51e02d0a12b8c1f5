package memqueue_test

import (
	"context"
	"fmt"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/memqueue"
)

// A client on an in-memory queue sized for the application: at most 50,000
// events waiting, 8 deliveries at once.
func ExampleNew() {
	q, err := memqueue.New(&memqueue.Config{Capacity: 50_000, Concurrency: 8})
	if err != nil {
		panic(err)
	}
	client, err := outhook.NewClient(&outhook.Config{Queue: q})
	if err != nil {
		panic(err)
	}
	_ = client.Start(context.Background())
	defer client.Stop(context.Background())

	_, err = memqueue.New(&memqueue.Config{Capacity: -1})
	fmt.Println(err)
	// Output:
	// memqueue: Capacity must be >= 0, got -1
}
