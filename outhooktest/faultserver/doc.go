// Package faultserver is a fault-injecting HTTP receiver for tests: a
// loopback server, like an httptest.Server, that answers each request the
// way a misbehaving webhook endpoint would, and records what it did.
//
//	srv := faultserver.New(t, &faultserver.Options{Plan: faultserver.Plan{
//		Script: []faultserver.Fault{faultserver.Status(503), faultserver.RetryAfter(429, 2*time.Second)},
//		Default: faultserver.OK(),
//	}})
//	// ... subscribe srv.URL() + "/hook", deliver ...
//	require.NoError(t, srv.Wait(ctx, 3))
//	t.Log(srv.Tally())
//
// # Faults
//
// A Fault is one way of answering a request:
//
//   - a status: OK, Status(code) — 2xx, 500, 502, 503, 504, 410, ...;
//   - RetryAfter(429, d) and RetryAfterDate(429, d): Retry-After in
//     delta-seconds or as an HTTP-date (RFC 9110 §10.2.3);
//   - Redirect(code, location): a 3xx to this server ("/moved") or to any
//     address, such as http://169.254.169.254/latest/meta-data;
//   - Hang: no answer until the client's timeout closes the connection or
//     the server closes;
//   - Trickle(size, chunk, interval): a body sent slowly;
//   - Reset: a response cut by a TCP reset (SO_LINGER 0) halfway through
//     its body;
//   - LargeBody(size): a large body (50 MiB by default), streamed, never
//     held in memory;
//   - Drop: the connection closed without an answer.
//
// # Plans
//
// A Plan picks each request's fault: its Script first, in order, then a
// draw from its weighted Mix, or its Default. Options.Plan serves every
// path; Options.Paths gives paths plans of their own, so that one server
// stands in for several subscriptions' endpoints (/sub-1 ... /sub-5), each
// with its own mix. Draws come from math/rand/v2's PCG seeded with
// Options.Seed and the path: for a seed, a path's faults depend only on the
// order of that path's requests.
//
// # Records
//
// The server records every request (Requests): its time, path, headers,
// webhook-id, body size, the fault applied and how much of the response it
// sent. Tally counts them by fault and by path. Wait(ctx, n) returns once
// n requests have been recorded and WaitIdle once none is in progress,
// without polling. Connections counts the connections accepted, to prove
// that a client never reached the server.
//
// Close (registered as a cleanup when New is given a testing.TB) ends the
// requests in flight, hanging ones included, and waits for every goroutine
// the server started.
package faultserver
