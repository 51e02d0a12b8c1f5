//go:build race

package clustertest

// raceEnabled: the race detector slows the nodes down several times over,
// so the proofs run a tenth of their events under it (the full-size proofs
// run in the plain `go test ./...`).
const raceEnabled = true
