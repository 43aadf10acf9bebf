//go:build !linux

package transport

import (
	"net"
	"time"
)

// setUserTimeout does nothing: TCP_USER_TIMEOUT is Linux's. Keepalive
// still ends a link to a silent peer.
func setUserTimeout(*net.TCPConn, time.Duration) error { return nil }
