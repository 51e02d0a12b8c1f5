//go:build race

package lifecycletest

// raceEnabled: under the race detector the proof runs a tenth of its
// events (the full size runs in the plain go test ./...).
const raceEnabled = true
