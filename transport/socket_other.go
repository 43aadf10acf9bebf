//go:build !linux

package transport

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// SetUserTimeout does nothing: TCP_USER_TIMEOUT is Linux's. Keepalive
// still ends a link to a silent peer.
func SetUserTimeout(*net.TCPConn, time.Duration) error { return nil }

// MarkControl fails: SO_MARK is Linux's, and drop-in mode with it.
func MarkControl(uint32) func(network, address string, rc syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error { return errors.New("SO_MARK needs Linux") }
}
