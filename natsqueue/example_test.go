package natsqueue_test

import (
	"context"
	"log"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/outhook/outhook"
	"github.com/outhook/outhook/natsqueue"
)

// An outhook client on NATS JetStream. Every node of the application runs
// the same code against the same stream and the same store. (Not run: it
// needs a NATS server.)
func Example() {
	nc, err := nats.Connect("nats://127.0.0.1:4222", nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	q, err := natsqueue.New(js, &natsqueue.Config{Stream: "OUTHOOK"})
	if err != nil {
		log.Fatal(err)
	}
	client, err := outhook.NewClient(&outhook.Config{
		Queue: q,
		// Several nodes need a store they share, such as the Postgres
		// store; the MemoryStore suits one process.
		Store: outhook.NewMemoryStore(nil),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(context.Background()); err != nil {
		log.Fatal(err) // for example: natsqueue: start: not connected to NATS ...
	}
	defer client.Stop(context.Background())
	// ... RegisterEvent, CreateSubscription, EmitHook ...
}
