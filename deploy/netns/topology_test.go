//go:build linux

package netns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// netnsPrefix starts the name of every namespace these tests create:
// gwnt<pid>r<random>-<role>, so a namespace left behind by a killed test
// run can be recognised by its dead pid and swept.
const netnsPrefix = "gwnt"

// netnsHost is one simulated host: a network namespace joined to the
// switch by a veth pair whose host end is called e0.
type netnsHost struct {
	Member string // the member it runs (m1, m2, ...)
	NS     string // namespace name
	Addr   string // its current IPv4 address on e0
}

// netnsTopology is a throwaway network of hosts on one Linux bridge that
// lives in its own switch namespace. Nothing is routed outside the
// namespaces it creates. Each host resolves the member names through its
// own /etc/netns/<ns>/hosts, which `ip netns exec` mounts over /etc/hosts.
type netnsTopology struct {
	t      *testing.T
	ip     string // path of the ip command
	subnet string // first three octets of the hosts' /24, e.g. 10.231.17
	sw     string // the switch namespace
	hosts  []*netnsHost
}

// netnsIPCommand returns the path of iproute2's ip, or skips the test when
// namespaces cannot be used here: not root, GROUPWIRE_NETNS=0, no ip.
// With GROUPWIRE_NETNS=1 (as .ci/run sets it) each of those is a failure
// instead, so CI cannot pass by skipping.
func netnsIPCommand(t *testing.T) string {
	t.Helper()
	if os.Getenv("GROUPWIRE_NETNS") == "0" {
		t.Skip("GROUPWIRE_NETNS=0: network namespace tests disabled")
	}
	if os.Geteuid() != 0 {
		netnsUnavailable(t, "network namespace tests need root (euid is not 0)")
	}
	if p, err := exec.LookPath("ip"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/ip"); err == nil {
		return "/usr/sbin/ip"
	}
	netnsUnavailable(t, "network namespace tests need iproute2's ip command; not found on PATH or at /usr/sbin/ip")
	return ""
}

// netnsUnavailable skips the test, or fails it when GROUPWIRE_NETNS=1
// demands the namespace tests.
func netnsUnavailable(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("GROUPWIRE_NETNS") == "1" {
		t.Fatalf("GROUPWIRE_NETNS=1, but %s", why)
	}
	t.Skip(why + " (GROUPWIRE_NETNS=1 makes this a failure)")
}

// newNetnsTopology creates one namespace per member plus a switch
// namespace with a bridge, and addresses member i as <subnet>.i. It skips
// the test when the first `ip netns add` fails. Everything is deleted by
// t.Cleanup, even when the test fails; register it before starting any
// process in the namespaces, so the processes are stopped first.
func newNetnsTopology(t *testing.T, ipPath string, members []string) *netnsTopology {
	t.Helper()
	netnsSweepStale(t, ipPath)
	base := fmt.Sprintf("%s%dr%d", netnsPrefix, os.Getpid(), rand.IntN(1_000_000))
	top := &netnsTopology{
		t:      t,
		ip:     ipPath,
		subnet: fmt.Sprintf("10.231.%d", rand.IntN(256)),
		sw:     base + "-sw",
	}
	if err := top.run("netns", "add", top.sw); err != nil {
		netnsUnavailable(t, fmt.Sprintf("cannot create network namespaces here: %v", err))
	}
	created := []string{top.sw}
	t.Cleanup(func() { netnsDelete(t, ipPath, created) })
	for i, m := range members {
		h := &netnsHost{Member: m, NS: fmt.Sprintf("%s-h%d", base, i+1), Addr: fmt.Sprintf("%s.%d", top.subnet, i+1)}
		if err := top.run("netns", "add", h.NS); err != nil {
			t.Fatal(err)
		}
		created = append(created, h.NS)
		top.hosts = append(top.hosts, h)
	}
	steps := [][]string{
		{"-n", top.sw, "link", "set", "lo", "up"},
		{"-n", top.sw, "link", "add", "br0", "type", "bridge"},
		{"-n", top.sw, "link", "set", "br0", "up"},
	}
	for i, h := range top.hosts {
		port := fmt.Sprintf("p%d", i+1)
		steps = append(steps,
			[]string{"-n", h.NS, "link", "set", "lo", "up"},
			[]string{"-n", top.sw, "link", "add", port, "type", "veth", "peer", "name", "e0", "netns", h.NS},
			[]string{"-n", top.sw, "link", "set", port, "master", "br0"},
			[]string{"-n", top.sw, "link", "set", port, "up"},
			[]string{"-n", h.NS, "addr", "add", h.Addr + "/24", "dev", "e0"},
			[]string{"-n", h.NS, "link", "set", "e0", "up"},
		)
	}
	for _, s := range steps {
		if err := top.run(s...); err != nil {
			t.Fatal(err)
		}
	}
	if err := top.writeHosts(); err != nil {
		t.Fatal(err)
	}
	return top
}

// shell runs a bash command inside member's host, bounded by 5 s, and
// returns its output, trimmed.
func (top *netnsTopology) shell(member, script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, top.ip, "netns", "exec", top.host(member).NS, "bash", "-c", script).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// host returns the host that runs member.
func (top *netnsTopology) host(member string) *netnsHost {
	for _, h := range top.hosts {
		if h.Member == member {
			return h
		}
	}
	top.t.Fatalf("no host runs member %s", member)
	return nil
}

// run runs `ip args...` with a deadline and names the command and its
// output in the error.
func (top *netnsTopology) run(args ...string) error {
	return netnsRunIP(top.ip, args...)
}

func netnsRunIP(ipPath string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ipPath, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// writeHosts gives every host a hosts file naming every member at its
// current address. The files are rewritten in place: `ip netns exec`
// bind-mounts them over /etc/hosts at process start, and a bind mount
// follows the inode, so a rename would go unseen by running processes.
func (top *netnsTopology) writeHosts() error {
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n")
	for _, h := range top.hosts {
		fmt.Fprintf(&b, "%s %s\n", h.Addr, h.Member)
	}
	for _, h := range top.hosts {
		dir := filepath.Join("/etc/netns", h.NS)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("hosts file of %s: %w", h.NS, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("hosts file of %s: %w", h.NS, err)
		}
	}
	return nil
}

// moveHost gives member's host a new address (the last octet given) and
// rewrites every hosts file to match.
func (top *netnsTopology) moveHost(member string, lastOctet int) {
	top.t.Helper()
	h := top.host(member)
	addr := fmt.Sprintf("%s.%d", top.subnet, lastOctet)
	if err := top.run("-n", h.NS, "addr", "del", h.Addr+"/24", "dev", "e0"); err != nil {
		top.t.Fatal(err)
	}
	if err := top.run("-n", h.NS, "addr", "add", addr+"/24", "dev", "e0"); err != nil {
		top.t.Fatal(err)
	}
	h.Addr = addr
	if err := top.writeHosts(); err != nil {
		top.t.Fatal(err)
	}
}

// setLink takes member's host's veth end up or down.
func (top *netnsTopology) setLink(member string, up bool) {
	top.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	if err := top.run("-n", top.host(member).NS, "link", "set", "e0", state); err != nil {
		top.t.Fatal(err)
	}
}

// netnsDelete deletes the namespaces and their hosts-file folders, then
// checks that `ip netns list` no longer shows any of them.
func netnsDelete(t *testing.T, ipPath string, names []string) {
	for _, ns := range names {
		if err := netnsRunIP(ipPath, "netns", "delete", ns); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if err := os.RemoveAll(filepath.Join("/etc/netns", ns)); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	left, err := netnsList(ipPath)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, ns := range names {
		for _, l := range left {
			if l == ns {
				t.Errorf("cleanup: namespace %s still listed by ip netns list", ns)
			}
		}
	}
}

// netnsList returns the names `ip netns list` prints.
func netnsList(ipPath string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, ipPath, "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0]) // "name (id: 3)"
		}
	}
	return names, nil
}

// netnsSweepStale deletes namespaces of earlier runs whose test process is
// gone (killed before its cleanup could run). Namespaces of live
// processes, including parallel runs, are left alone.
func netnsSweepStale(t *testing.T, ipPath string) {
	names, err := netnsList(ipPath)
	if err != nil {
		return // the caller's own `ip netns add` decides whether to skip
	}
	var stale []string
	for _, ns := range names {
		rest, ok := strings.CutPrefix(ns, netnsPrefix)
		if !ok {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "r")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			stale = append(stale, ns)
		}
	}
	if len(stale) > 0 {
		t.Logf("removing namespaces left by dead test runs: %s", strings.Join(stale, " "))
		netnsDelete(t, ipPath, stale)
	}
}
