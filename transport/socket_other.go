//go:build !linux

package transport

import (
	"net"
	"time"
)

// SetUserTimeout does nothing: TCP_USER_TIMEOUT is Linux's. Keepalive
// still ends a link to a silent peer.
func SetUserTimeout(*net.TCPConn, time.Duration) error { return nil }
