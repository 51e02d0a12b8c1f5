//go:build !unix

package main

import "testing"

// refusingAddr returns an address of 127.0.0.1 that refuses connections:
// port 1 (tcpmux), which nothing listens on in practice. On Unix it is a
// port bound without listening, which is certain.
func refusingAddr(*testing.T) string { return "127.0.0.1:1" }
