// Package storetest is the conformance suite of outhook.Store. Every store
// (the in-memory outhook.MemoryStore, the SQL stores, any store of your own)
// runs it, so that the client behaves the same whichever store keeps its
// subscriptions and deliveries.
//
// # Usage
//
// Call Run from a test with a function that returns an empty store. It is
// called once per subtest; register the store's cleanup with t.Cleanup:
//
//	func TestStoreConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) outhook.Store {
//			db := openEmptyTestDatabase(t) // a private schema or file per call
//			t.Cleanup(func() { db.Close() })
//			return sqlitestore.New(db)
//		})
//	}
//
// Subtests run one after another, never in parallel, though several of them
// call the store from many goroutines at once. Run them alone with -run, as
// in -run 'TestStoreConformance/Deliveries/Reopen'.
//
// # What the suite expects
//
// The interface documentation in package outhook is the contract; where it
// leaves a choice open, the suite asserts what outhook.MemoryStore does:
//
//   - Times. A store keeps at least microseconds, and the instant: times
//     are compared in UTC, with a tolerance of one microsecond, so a store
//     may truncate or round nanoseconds and return times in any location.
//     The zero time comes back as the zero time (IsZero), never as the Unix
//     epoch. Orderings must tell apart times one microsecond apart.
//     Durations (Attempt.Duration, Attempt.RetryAfter) keep microseconds
//     too.
//   - JSON. Subscription.Config and Delivery.Payload come back as the same
//     JSON document (objects compared by key, numbers by their text, so a
//     Postgres jsonb column passes), not necessarily the same bytes. A
//     nil Config comes back empty (nil or zero length), not as "null".
//   - Text. Attempt.Response comes back byte for byte, including NUL bytes
//     and invalid UTF-8: it is an excerpt of whatever the destination
//     answered. Other strings are valid UTF-8 and come back as they were,
//     with their case: IDs that differ only in case are different IDs.
//     IDs and event IDs are up to 255 bytes long.
//   - Slices. Subscription.Events, Filter.AnyOf and Delivery.Attempts keep
//     their order; a nil Filter stays nil and a set one stays set, with its
//     Expr (CEL source, with newlines, tabs and escapes) byte for byte.
//   - Ordering. Subscriptions are listed and matched oldest first: by
//     CreatedAt, then by ID (byte order) when CreatedAt is the same.
//     Deliveries are listed newest first by CreatedAt; the suite creates
//     deliveries in the order of their CreatedAt and never asserts the order
//     of deliveries that share one (a batch made by routing does), so a
//     store may break those ties by insertion order, as MemoryStore does,
//     or by ID.
//   - Deleting a subscription keeps its deliveries, so the suite creates
//     deliveries whose SubscriptionID names no subscription: a store cannot
//     hold a foreign key from deliveries to subscriptions.
//   - ListDeliveries returns each delivery with its attempts, as
//     GetDelivery does, and applies DeliveryQuery.Limit after the filter; a
//     zero or negative Limit means 100.
//   - Values a store has returned do not change when the store is called
//     again: a subscription, a match result, a delivery or a list held by
//     the caller stays as it was returned. (The suite never modifies values
//     it has passed to the store or received from it, which the Store
//     documentation forbids, so a store may keep and share them.)
//   - Missing IDs are errors matching outhook.ErrNotFound in every method
//     that takes an ID, UpdateDelivery included, and such a call creates
//     nothing.
package storetest
