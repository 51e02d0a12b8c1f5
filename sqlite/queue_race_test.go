//go:build race

package sqlite_test

// modernc.org/sqlite is C translated to Go, all of which the race detector
// instruments: SQLite runs about ten times slower under it.
func init() { raceDetector = true }
