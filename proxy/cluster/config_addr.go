package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	sockaddrtemplate "github.com/hashicorp/go-sockaddr/template"
)

// splitAddr splits host:port and checks that the port is a number from 1 to
// 65535. The host may be empty; callers decide whether that is allowed.
func splitAddr(s string) (host string, port int, err error) {
	if !strings.Contains(s, ":") {
		return "", 0, fmt.Errorf("missing port in %q (write host:port)", s)
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") {
			return "", 0, fmt.Errorf("%q is not host:port (an IPv6 address needs brackets, as in [::1]:24900)", s)
		}
		var aerr *net.AddrError
		if errors.As(err, &aerr) {
			return "", 0, fmt.Errorf("%q is not host:port: %s", s, aerr.Err)
		}
		return "", 0, fmt.Errorf("%q is not host:port: %w", s, err)
	}
	if portStr == "" {
		return "", 0, fmt.Errorf("missing port in %q (write host:port)", s)
	}
	port, err = strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q in %q is not a number from 1 to 65535", portStr, s)
	}
	return host, port, nil
}

// peerAddress checks a member's address: host:port with a host.
func peerAddress(s string) (host string, port int, err error) {
	host, port, err = splitAddr(s)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		return "", 0, fmt.Errorf("missing host in %q (write host:port)", s)
	}
	return host, port, nil
}

// bindAddr is a resolved listen address.
type bindAddr struct {
	IP   netip.Addr // invalid (zero) for all interfaces
	Port int
}

func (b bindAddr) String() string {
	if !b.IP.IsValid() {
		return ":" + strconv.Itoa(b.Port)
	}
	return netip.AddrPortFrom(b.IP, uint16(b.Port)).String()
}

// overlaps reports whether two listeners would claim the same socket: same
// port, and the same IP or one of them on all interfaces.
func (b bindAddr) overlaps(o bindAddr) bool {
	if b.Port != o.Port {
		return false
	}
	if !b.IP.IsValid() || !o.IP.IsValid() || b.IP.IsUnspecified() || o.IP.IsUnspecified() {
		return true
	}
	return b.IP == o.IP
}

// listenAddr evaluates a listen address written in the cluster file: a
// go-sockaddr template or a literal IP:port. The result must name an IP: an
// empty template result or an empty host is an error, never a silent bind to
// all interfaces (write 0.0.0.0:PORT or [::]:PORT for that).
func listenAddr(s string) (bindAddr, error) {
	written := s
	if strings.Contains(s, "{{") {
		out, err := sockaddrtemplate.Parse(s)
		if err != nil {
			return bindAddr{}, fmt.Errorf("evaluate template: %w", err)
		}
		s = strings.TrimSpace(out)
		if s == "" || strings.HasPrefix(s, ":") {
			return bindAddr{}, fmt.Errorf("template gave %q: no address matched (refusing to listen on all interfaces; write 0.0.0.0:PORT for that)", s)
		}
	}
	host, port, err := splitAddr(s)
	if err != nil {
		if s != written {
			return bindAddr{}, fmt.Errorf("template gave %q: %w", s, err)
		}
		return bindAddr{}, err
	}
	if host == "" {
		return bindAddr{}, fmt.Errorf("missing host in %q (refusing to listen on all interfaces; write 0.0.0.0:%d for that)", s, port)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return bindAddr{}, fmt.Errorf("host %q in %q is not an IP address", host, s)
	}
	return bindAddr{IP: ip.Unmap(), Port: port}, nil
}

// localIP parses a member's local_ip (default 127.0.0.1): one IP address,
// loopback unless allowNonLoopback.
func localIP(s string, allowNonLoopback bool) (netip.Addr, error) {
	if s == "" {
		s = DefaultLocalIP
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	ip = ip.Unmap()
	if ip.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("%s is not a single address (name the member's own IP)", ip)
	}
	if !ip.IsLoopback() && !allowNonLoopback {
		return netip.Addr{}, fmt.Errorf("%s is not a loopback address (set allow_non_loopback: true to allow it)", ip)
	}
	return ip, nil
}
