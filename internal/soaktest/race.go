//go:build race

package soaktest

// raceEnabled: the race detector slows the client, the store and the
// receiver down several times over, so the soak runs a twentieth of its
// events under it (the full-size soak runs in the plain `go test`).
const raceEnabled = true
