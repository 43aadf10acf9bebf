package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/internal/testutil"
)

// startMember runs `groupwire member args...` until the returned stop is
// called, and returns its echo address and output.
func startMember(t *testing.T, args ...string) (addr string, out *testutil.LockedBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &testutil.LockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"member"}, args...), out, io.Discard) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("member %q: %v", args, err)
		}
	})
	t.Cleanup(stop)
	re := regexp.MustCompile(`echo service on (\S+),`)
	testutil.WaitFor(t, 5*time.Second, "member to start", func() bool { return re.MatchString(out.String()) })
	return re.FindStringSubmatch(out.String())[1], out, stop
}

// TestMemberPings runs real members on loopback: pings that succeed over a
// kept-open connection, a peer answering under the wrong name, a peer that
// hangs up, and a live connection cut when its peer stops.
func TestMemberPings(t *testing.T) {
	bAddr, _, stopB := startMember(t, "--name", "b", "--listen", "127.0.0.1:0")
	xAddr, _, _ := startMember(t, "--name", "x", "--listen", "127.0.0.1:0")

	// A peer that accepts and hangs up at once.
	hangup, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hangup.Close()
	go func() {
		for {
			c, err := hangup.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	_, out, _ := startMember(t, "--name", "a", "--listen", "127.0.0.1:0", "--interval", "20ms", "--timeout", "1s",
		"--ping", "b="+bAddr+",c="+xAddr+",d="+hangup.Addr().String())
	lines := func(re string) int {
		return len(regexp.MustCompile(re).FindAllString(out.String(), -1))
	}
	testutil.WaitFor(t, 5*time.Second, "pings to b over a reused connection", func() bool {
		return lines(`(?m)^ping from=a to=b addr=`+regexp.QuoteMeta(bAddr)+` result=ok rtt=\S+ conn=reused$`) >= 2
	})
	if n := lines(`(?m)^ping from=a to=b .* conn=new$`); n != 1 {
		t.Errorf("want exactly one new connection to b, got %d:\n%s", n, out)
	}
	testutil.WaitFor(t, 5*time.Second, "failed pings to c and d", func() bool {
		return lines(`(?m)^ping from=a to=c .*result=fail .*answered by x, not c`) >= 1 &&
			lines(`(?m)^ping from=a to=d .*result=fail conn=new err="read reply: EOF"$`) >= 1
	})
	if n := lines(`(?m)^ping from=a to=[cd] .*result=ok`); n != 0 {
		t.Errorf("%d pings to c or d succeeded:\n%s", n, out)
	}

	// Stopping b cuts a's live connection: the next ping on it fails.
	stopB()
	testutil.WaitFor(t, 5*time.Second, "a failed ping on the cut connection to b", func() bool {
		return lines(`(?m)^ping from=a to=b .*result=fail conn=reused `) >= 1
	})
}

func TestParsePingTargets(t *testing.T) {
	got, err := parsePingTargets("mysql-2=127.0.0.1:33062, 127.0.0.1:33063,[::1]:5")
	want := []pingTarget{{"mysql-2", "127.0.0.1:33062"}, {"", "127.0.0.1:33063"}, {"", "[::1]:5"}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parsePingTargets = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "mysql-2", "=127.0.0.1:1", "a=b=c", "a=127.0.0.1:1,"} {
		if _, err := parsePingTargets(bad); err == nil {
			t.Errorf("parsePingTargets(%q): want an error", bad)
		}
	}
}

// TestMemberFromConfig derives a member's echo and ping addresses from a
// real cluster file with two channels.
func TestMemberFromConfig(t *testing.T) {
	g, err := localgroup.Prepare(localgroup.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	listen, targets, err := memberFromConfig(g.ConfigPath, "mysql-2", "recovery")
	if err != nil {
		t.Fatal(err)
	}
	if want := g.ServiceAddr("mysql-2", "recovery"); listen != want {
		t.Errorf("listen %s, want %s", listen, want)
	}
	want := []pingTarget{
		{"mysql-1", g.TunnelAddr("mysql-2", "mysql-1", "recovery")},
		{"mysql-3", g.TunnelAddr("mysql-2", "mysql-3", "recovery")},
	}
	slices.SortFunc(targets, func(a, b pingTarget) int { return strings.Compare(a.Name, b.Name) })
	if !slices.Equal(targets, want) {
		t.Errorf("targets %v, want %v", targets, want)
	}
	if _, _, err := memberFromConfig(g.ConfigPath, "mysql-2", ""); err == nil || !strings.Contains(err.Error(), "--channel") {
		t.Errorf("two channels, none chosen: want an error asking for --channel, got %v", err)
	}
	if _, _, err := memberFromConfig(g.ConfigPath, "mysql-2", "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown channel: want an error naming it, got %v", err)
	}
	if _, _, err := memberFromConfig(filepath.Join(t.TempDir(), "missing.yaml"), "mysql-2", ""); err == nil {
		t.Error("missing cluster file: want an error")
	}
}

func TestMemberUsage(t *testing.T) {
	for _, args := range [][]string{
		{"member", "--listen", "127.0.0.1:0"},                     // no name
		{"member", "--name", "a"},                                 // nothing to listen on
		{"member", "--name", "a", "--listen", "x", "--ping", "y"}, // bad target
		{"member", "--name", "a", "--listen", "127.0.0.1:0", "--interval", "0s"},
	} {
		t.Setenv("GROUPWIRE_MEMBER", "")
		err := run(context.Background(), args, io.Discard, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: want a usage error, got %v", args, err)
		}
	}
}

// TestMemberFromDropInConfig: in drop-in mode a member listens at its own
// address and pings its peers at theirs, the same port everywhere.
func TestMemberFromDropInConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cluster.yaml")
	yaml := "group: g\ncapture: transparent\ntls: {ssl_mode: DISABLED}\nchannels: {group: {}}\nmembers:\n" +
		"  db-1: {address: \"db-1.svc:24900\", ports: {group: 33061}}\n" +
		"  db-2: {address: \"db-2.svc:24900\", ports: {group: 33061}}\n" +
		"  db-3: {address: \"db-3.svc:24900\", ports: {group: 33061}}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, targets, err := memberFromConfig(file, "db-2", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []pingTarget{{"db-1", "db-1.svc:33061"}, {"db-3", "db-3.svc:33061"}}
	if listen != "db-2.svc:33061" || !slices.Equal(targets, want) {
		t.Errorf("listen %s, targets %v; want db-2.svc:33061 and %v", listen, targets, want)
	}
}
