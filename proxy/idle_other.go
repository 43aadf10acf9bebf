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

// socketBytes needs Linux's TCP_INFO; elsewhere live links count when they
// end.
func socketBytes(*net.TCPConn) (uint64, uint64, error) { return 0, 0, errors.ErrUnsupported }
