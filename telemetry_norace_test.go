//go:build !race

package outhook_test

// raceDetectorOn: allocation counts are not those of a normal build.
const raceDetectorOn = false
