//go:build !race

package lifecycletest

const raceEnabled = false
