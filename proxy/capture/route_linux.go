package capture

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// installReplyRoute makes sure packets marked ReplyMark are delivered
// locally: a policy rule to ReplyTable, whose one route is local. Both are
// added only when missing, so a reload or a restart changes nothing.
func installReplyRoute() error {
	rule := netlink.NewRule()
	rule.Family, rule.Mark, rule.Table = unix.AF_INET, ReplyMark, ReplyTable
	rules, err := netlink.RuleListFiltered(unix.AF_INET, rule, netlink.RT_FILTER_MARK|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("capture: list routing rules: %w", err)
	}
	if len(rules) == 0 {
		if err := netlink.RuleAdd(rule); err != nil {
			return fmt.Errorf("capture: add routing rule fwmark %#x lookup %d: %w", ReplyMark, ReplyTable, err)
		}
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("capture: find lo: %w", err)
	}
	_, all, _ := net.ParseCIDR("0.0.0.0/0")
	route := &netlink.Route{LinkIndex: lo.Attrs().Index, Dst: all, Table: ReplyTable, Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST}
	if err := netlink.RouteReplace(route); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("capture: add route local 0.0.0.0/0 dev lo table %d: %w", ReplyTable, err)
	}
	return nil
}

// Transparent returns a dialer Control that lets a socket bind to an
// address this host does not have (IP_TRANSPARENT): the sidecar connects
// to its member from the dialling peer's address. The socket carries
// ReplyMark, which the rules keep on its connection, so that the member's
// replies come back to it. It needs CAP_NET_ADMIN.
func Transparent(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TRANSPARENT, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(ReplyMark))
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("set IP_TRANSPARENT and SO_MARK: %w (keeping the peer's address needs CAP_NET_ADMIN)", serr)
	}
	return nil
}
