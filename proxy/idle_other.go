//go:build !linux

package proxy

import (
	"errors"
	"net"
	"time"
)

// quietFor needs Linux's TCP_INFO; elsewhere idle_timeout is not enforced.
func quietFor(*net.TCPConn) (time.Duration, error) {
	return 0, errors.ErrUnsupported
}
