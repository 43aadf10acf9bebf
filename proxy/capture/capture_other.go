//go:build !linux

package capture

import (
	"net"
	"net/netip"
	"syscall"
)

// Install fails: the capture rules are Linux nftables.
func Install(*Rules) error { return ErrUnsupported }

// OriginalDst fails: SO_ORIGINAL_DST is Linux's.
func OriginalDst(*net.TCPConn) (netip.AddrPort, error) { return netip.AddrPort{}, ErrUnsupported }

func readStatus() (string, error) { return "", ErrUnsupported }

// Present fails: the capture rules are Linux nftables.
func Present() (bool, error) { return false, ErrUnsupported }

// Transparent fails: IP_TRANSPARENT is Linux's.
func Transparent(string, string, syscall.RawConn) error { return ErrUnsupported }
