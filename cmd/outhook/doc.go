// Outhook is the companion tool of the outhook library: it receives and
// checks Standard Webhooks on a local port, verifies saved requests, makes
// signing secrets and keys, and drives a running application's admin API
// (package adminhttp).
//
// Install it with:
//
//	go install github.com/outhook/outhook/cmd/outhook@latest
//
// Every command has --help, with examples.
//
// # listen
//
//	outhook listen [--addr 127.0.0.1] [--port 8787] [--path /] [--secret KEY]...
//	               [--status 200 | --script 500,503,200] [--retry-after 5s] [--save DIR] [--json]
//
// Listen runs a local receiver. It first prints "listening on
// http://ADDR:PORT/PATH" (--port 0 picks a free port), then, for each
// request, its sequence number, time, method and path, its headers sorted
// by name, its body (pretty JSON when it is JSON, otherwise text cut after
// 4 KiB, or "(not text)" when it is not UTF-8) and, when --secret is given,
// whether its Standard Webhooks signature verified or why not. Control
// characters from the request (escape sequences, C1 and bidi controls,
// invalid UTF-8) are printed escaped: \x1b, \u009b, \u202e. --secret takes whsec_ secrets (v1,
// HMAC-SHA256) and whpk_ public keys (v1a, ed25519) and may be repeated.
//
// It answers every request with --status, or with the statuses of --script
// in order, the last one repeating (--script 500,500,200 rehearses two
// retries); giving both, or an empty --script, is a usage error. Error
// answers carry a short text, and --retry-after adds a Retry-After header
// to 429 and 503 answers. With a --path other than /, requests to other
// paths are answered 404. Bodies over 5 MiB are answered 413. These 404 and
// 413 answers take no step of --script and have no signature check.
// --save DIR writes each request in HTTP/1.1 wire format, body included, to
// DIR/NNNN-<webhook-id>.http, numbered after the files already there (a
// file is never overwritten: two runs saving to one directory take the
// next free number), which verify reads back. --json
// prints one JSON object per line instead: seq, time, method, path,
// headers, body (the JSON document, or a string), verified (absent without
// --secret), error, status and saved.
//
// Listen stops on SIGINT or SIGTERM, waiting up to 5 seconds for requests in
// progress, and exits 0. A second SIGINT (Ctrl-C) ends it at once, as it
// does every command.
//
// # verify
//
//	outhook verify --secret KEY [--secret KEY]... [--tolerance 5m] [--now RFC3339] < request.http
//
// Verify reads one HTTP request in wire format from stdin and checks its
// webhook-id, webhook-timestamp and webhook-signature headers against the
// keys, as package webhook's Verifier does. It prints "verified: webhook-id
// ..." and exits 0, or prints why not ("outhook: not verified: webhook:
// timestamp too old: ...") and exits 1. The timestamp must be within
// --tolerance of now; --now sets "now", to check a request saved earlier.
// Stdin that is not an HTTP request exits 1, as does data after the body
// that its Content-Length frames (line ends excepted) or a body after
// headers without a Content-Length. A terminal as stdin is a usage error:
// redirect a saved request into it.
//
// # secret new
//
//	outhook secret new [--type v1|v1a] [--json]
//
// Secret new prints a new whsec_ secret (v1, the default), or, with --type
// v1a, a whsk_ signing key for the subscription's config and its whpk_
// public key for receivers. --json prints {"secret": ...} or
// {"signingKey": ..., "publicKey": ...}.
//
// # admin
//
//	outhook admin events
//	outhook admin subscriptions list [--limit N]
//	outhook admin subscriptions get|enable|disable SUBSCRIPTION_ID
//	outhook admin deliveries list [--subscription ID] [--event ID] [--status pending|succeeded|failed]
//	                              [--since T] [--until T] [--limit 50]
//	outhook admin deliveries get DELIVERY_ID
//	outhook admin redeliver DELIVERY_ID
//	outhook admin recover SUBSCRIPTION_ID --since T [--until T]
//
// The admin commands call the admin API where --url says it is mounted
// (http://127.0.0.1:8080/admin/outhook/api, say), with --token as a bearer
// token. They print tables, or with -o json the API's JSON answer
// pretty-printed; lists follow the API's pages and print one {"items":
// [...]} (with the nextCursor of the rest when --limit stopped them), and
// recover, which repeats its request until the range is done, prints
// {"redelivered": N}. --timeout (30s) bounds each request. Times (--since,
// --until) are RFC 3339 or a duration before now: 30m, 2h, 7d.
//
// An error answer of the API is printed as "outhook: <status> <title>:
// <detail>" followed by a line per field at fault, with a hint for a 401
// (the token) and for a 404 of a route the API does not have (the URL); an
// API that cannot be reached is named by its URL (without its userinfo).
// A redirect is not followed, so that the token goes to the API only: it
// is reported with its Location. Pages that do not end (a nextCursor
// repeated, an empty page with a nextCursor, more than 10,000 requests)
// stop the command. These exit 1. An ID that is empty, "." or "..", or has
// control characters, is a usage error. Text of the API in tables and
// errors has its control characters escaped, as listen does; -o json
// prints the API's JSON as is.
//
// # completion and help
//
//	outhook completion bash|zsh|fish|powershell
//	outhook help [COMMAND...]
//
// Completion prints a shell completion script; "outhook completion bash
// --help" says where to put it. Help prints the help of a command, as its
// --help does; an unknown command is a usage error.
//
// # Environment
//
//	OUTHOOK_ADMIN_URL   default of admin --url
//	OUTHOOK_TOKEN       default of admin --token
//
// # Exit codes
//
//	0  success (including listen stopped by a signal, and --help)
//	1  the operation ran and failed: signature not verified, unreadable
//	   request, the API answered an error or could not be reached
//	2  usage error: unknown command, bad flag or argument, missing required
//	   flag
//
// Errors are printed to stderr as one line starting with "outhook: ";
// usage errors end with the command whose --help to read.
package main
