//go:build unix

package main

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// refusingAddr returns an address of 127.0.0.1 that refuses connections
// until the test ends: a TCP socket bound to a port but not listening. The
// kernel answers a connection to it with a reset (ECONNREFUSED), and no
// other program can take the port meanwhile, unlike a port listened on and
// closed, which anything may take before the test dials it.
func refusingAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}
