// Command cluster shows outhook on Postgres: two nodes, each with a
// connection pool, a River queue and a store of its own, share the work of
// one database, and an order is saved and announced in one transaction with
// EmitHookTx, so an order that rolls back is never announced.
//
//	go run ./examples/cluster -postgres 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//
// The demo works in a schema of its own (-schema, default outhook_demo),
// which it creates, migrates and empties; it leaves the rest of the
// database alone. Without -postgres it reads OUTHOOK_POSTGRES_URL.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/outhook/outhook"
	"github.com/outhook/outhook/postgres"
	"github.com/outhook/outhook/safehttp"
	"github.com/outhook/outhook/webhook"
)

// OrderPlaced is the payload of the shop plugin's order.placed hook.
type OrderPlaced struct {
	OrderID string `json:"orderId" validate:"required"`
	Cents   int    `json:"cents" validate:"gte=0"`
}

var orderPlaced = outhook.MustNewHook[OrderPlaced]("order.placed")

// eventID is what subscribers select: plugin "shop" + hook "order.placed".
const eventID = "shop.order.placed"

func newRegistry() *outhook.EventRegistry {
	reg := outhook.NewEventRegistry()
	outhook.MustRegisterEvent(reg, outhook.EventDefinition[OrderPlaced]{
		Hook: orderPlaced, DisplayName: "Order placed", Category: "Orders",
	}, outhook.PluginMetadata{PluginID: "shop"})
	return reg
}

func main() {
	pgURL := flag.String("postgres", os.Getenv("OUTHOOK_POSTGRES_URL"), "Postgres URL (default $OUTHOOK_POSTGRES_URL)")
	schema := flag.String("schema", "outhook_demo", "schema the demo creates and empties")
	events := flag.Int("events", 200, "orders to place")
	flag.Parse()
	if *pgURL == "" {
		fmt.Fprintln(os.Stderr, "cluster: give a Postgres URL with -postgres or OUTHOOK_POSTGRES_URL, for example\n"+
			"  go run ./examples/cluster -postgres 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'")
		os.Exit(2)
	}
	if err := run(os.Stdout, *pgURL, *schema, *events); err != nil {
		log.Fatal(err)
	}
}

// node is one outhook instance: what each process of the application runs.
type node struct {
	name      string
	pool      *pgxpool.Pool
	store     *postgres.Store
	client    *outhook.Client
	delivered atomic.Int64
}

// counting wraps a deliverer to count what its node delivered.
type counting struct {
	outhook.Deliverer
	n *atomic.Int64
}

func (c counting) Deliver(ctx context.Context, req *outhook.DeliveryRequest) (outhook.DeliveryResult, error) {
	res, err := c.Deliverer.Deliver(ctx, req)
	if err == nil {
		c.n.Add(1)
	}
	return res, err
}

func startNode(ctx context.Context, name string, poolCfg *pgxpool.Config, httpClient *safehttp.Client) (*node, error) {
	n := &node{name: name}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg.Copy())
	if err != nil {
		return nil, err
	}
	n.pool = pool
	q, err := postgres.NewQueue(pool, &postgres.QueueConfig{NodeID: name, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		pool.Close()
		return nil, err
	}
	store, err := postgres.NewStore(ctx, pool, nil)
	if err != nil {
		pool.Close()
		return nil, err
	}
	n.store = store
	webhooks, err := webhook.New(&webhook.Options{HTTP: httpClient})
	if err != nil {
		_ = store.Close()
		pool.Close()
		return nil, err
	}
	n.client, err = outhook.NewClient(&outhook.Config{
		Registry:   newRegistry(),
		Deliverers: []outhook.Deliverer{counting{webhooks, &n.delivered}},
		Store:      store,
		Queue:      q,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err == nil {
		err = n.client.Start(ctx)
	}
	if err != nil {
		_ = store.Close()
		pool.Close()
		return nil, err
	}
	return n, nil
}

func (n *node) stop(ctx context.Context) error {
	err := n.client.Stop(ctx)
	_ = n.store.Close()
	n.pool.Close()
	return err
}

// receiver verifies each webhook's signature and remembers the orders.
type receiver struct {
	verifier *webhook.Verifier
	mu       sync.Mutex
	orders   map[string]int
	bad      int
	changed  chan struct{}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var msg struct {
		Data OrderPlaced `json:"data"`
	}
	err := r.verifier.Verify(body, req.Header)
	if err == nil {
		err = json.Unmarshal(body, &msg)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.bad++
		http.Error(w, err.Error(), http.StatusBadRequest)
	} else {
		r.orders[msg.Data.OrderID]++
		w.WriteHeader(http.StatusNoContent)
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *receiver) count() (distinct, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.orders {
		distinct++
		total += n
	}
	return distinct, total
}

func run(w io.Writer, pgURL, schema string, events int) error {
	ctx := context.Background()
	poolCfg, err := prepareSchema(ctx, pgURL, schema)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Schema %s migrated (River's tables and outhook's).\n", schema)

	secret, err := webhook.NewSecret()
	if err != nil {
		return err
	}
	verifier, err := webhook.NewVerifier(secret)
	if err != nil {
		return err
	}
	recv := &receiver{verifier: verifier, orders: map[string]int{}, changed: make(chan struct{}, 1)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: recv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	// The receiver is on loopback, which the SSRF guard refuses unless told.
	httpClient, err := safehttp.New(&safehttp.Config{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		return err
	}
	defer httpClient.Close()

	nodes := make([]*node, 2)
	for i, name := range []string{"node-a", "node-b"} {
		if nodes[i], err = startNode(ctx, name, poolCfg, httpClient); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, n := range nodes {
			_ = n.stop(stopCtx)
		}
	}()
	fmt.Fprintln(w, "Two nodes started, each with its own pool, River queue and store.")

	// A subscription saved through one node is routed by both: they share
	// the store.
	_, err = nodes[0].client.CreateSubscription(ctx, outhook.Subscription{
		Name: "fulfilment webhook", Events: []string{eventID}, DelivererID: webhook.ID,
		Config: json.RawMessage(`{"url":"http://` + ln.Addr().String() + `/orders","secrets":[{"secret":"` + secret + `"}]}`),
	})
	if err != nil {
		return err
	}

	// The order and its announcement commit together, or neither does.
	if err := placeOrder(ctx, nodes[0], OrderPlaced{OrderID: "order-committed", Cents: 4200}, true); err != nil {
		return err
	}
	if err := placeOrder(ctx, nodes[0], OrderPlaced{OrderID: "order-rolled-back", Cents: 999}, false); err != nil {
		return err
	}
	fmt.Fprintln(w, "EmitHookTx: order-committed saved and announced in one transaction; order-rolled-back rolled back.")

	// More orders, emitted on both nodes; the deliveries go to whichever
	// node takes them from the queue.
	start := time.Now()
	for i := 0; i < events; i++ {
		n := nodes[i%2]
		if err := outhook.EmitHook(ctx, n.client, orderPlaced, OrderPlaced{OrderID: fmt.Sprintf("order-%d", i), Cents: 100 + i}); err != nil {
			return err
		}
	}
	want := events + 1
	deadline := time.After(2 * time.Minute)
	for {
		if distinct, _ := recv.count(); distinct >= want {
			break
		}
		select {
		case <-recv.changed:
		case <-deadline:
			distinct, _ := recv.count()
			return fmt.Errorf("only %d of %d orders arrived", distinct, want)
		}
	}
	elapsed := time.Since(start)
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, n := range nodes {
		if err := n.client.WaitIdle(waitCtx); err != nil {
			return err
		}
	}

	distinct, total := recv.count()
	recv.mu.Lock()
	rolledBack, bad := recv.orders["order-rolled-back"], recv.bad
	recv.mu.Unlock()
	fmt.Fprintf(w, "Received %d orders (%d deliveries, %d with a bad signature) in %s.\n", distinct, total, bad, elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "Split: %s delivered %d, %s delivered %d.\n", nodes[0].name, nodes[0].delivered.Load(), nodes[1].name, nodes[1].delivered.Load())
	fmt.Fprintf(w, "The rolled-back order arrived %d times.\n", rolledBack)
	if rolledBack != 0 || bad != 0 || total != want {
		return errors.New("cluster: unexpected deliveries")
	}
	return nil
}

// placeOrder saves an order and announces it in one transaction, then
// commits or rolls back.
func placeOrder(ctx context.Context, n *node, o OrderPlaced, commit bool) error {
	tx, err := n.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "INSERT INTO orders (id, cents) VALUES ($1, $2)", o.OrderID, o.Cents); err != nil {
		return err
	}
	if err := outhook.EmitHookTx(ctx, n.client, tx, orderPlaced, o); err != nil {
		return err
	}
	if !commit {
		return tx.Rollback(ctx)
	}
	return tx.Commit(ctx)
}

// prepareSchema creates the demo's schema afresh with the application's
// orders table, migrates outhook into it, and returns a pool configuration
// whose connections use it (search_path).
func prepareSchema(ctx context.Context, pgURL, schema string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(pgURL)
	if err != nil {
		return nil, fmt.Errorf("Postgres URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("connect to Postgres: %w", err)
	}
	defer conn.Close(ctx)
	id := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+id+" CASCADE; CREATE SCHEMA "+id+
		"; CREATE TABLE "+id+".orders (id text PRIMARY KEY, cents int NOT NULL)"); err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg.Copy())
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool); err != nil {
		return nil, err
	}
	return cfg, nil
}
