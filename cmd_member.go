package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
	"github.com/groupwire/groupwire/proxy/cluster"
)

// runMember is `groupwire member`, a hidden command: a tiny stand-in for a
// database member, used by the docker-compose and Kubernetes examples
// where no database image is at hand. It serves an echo service on
// --listen and, every --interval, sends one line to each --ping target
// over a kept-open connection and prints one result line per ping:
//
//	ping from=mysql-1 to=mysql-2 addr=127.0.0.1:33062 result=ok rtt=1.2ms conn=new
//	ping from=mysql-1 to=mysql-3 addr=127.0.0.1:33063 result=fail conn=reused err="read reply: EOF"
//
// With --config, --listen and --ping default to what the cluster file
// says for the member and channel: its own service address, and the
// loopback tunnel address of every other member.
func runMember(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("member", stderr)
	name := fs.String("name", envOr("GROUPWIRE_MEMBER", ""), "this member's name (env GROUPWIRE_MEMBER)")
	listen := fs.String("listen", "", "address of the echo service (default: from --config)")
	pings := fs.String("ping", "", "comma-separated [NAME=]ADDR targets (default: from --config)")
	configPath := fs.String("config", "", "cluster file to take --listen and --ping from")
	channel := fs.String("channel", "", "channel of the cluster file (default: its only channel)")
	interval := fs.Duration("interval", time.Second, "pause between pings")
	timeout := fs.Duration("timeout", 2*time.Second, "deadline of one ping: dial, write and reply")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return usageError{"member: --name is required"}
	}
	if *interval <= 0 || *timeout <= 0 {
		return usageError{"member: --interval and --timeout must be positive"}
	}
	var targets []pingTarget
	if *pings != "" {
		var err error
		if targets, err = parsePingTargets(*pings); err != nil {
			return usageError{"member: --ping: " + err.Error()}
		}
	}
	if *configPath != "" {
		addr, derived, err := memberFromConfig(*configPath, *name, *channel)
		if err != nil {
			return fmt.Errorf("member %s: %w", *name, err)
		}
		if *listen == "" {
			*listen = addr
		}
		if *pings == "" {
			targets = derived
		}
	}
	if *listen == "" {
		return usageError{"member: --listen (or --config) is required"}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("member %s: echo service: %w", *name, err)
	}
	out := &lockedWriter{w: stdout}
	fmt.Fprintf(out, "member %s: echo service on %s, pinging %d peer(s) every %s\n", *name, ln.Addr(), len(targets), *interval)
	var wg sync.WaitGroup
	wg.Go(func() { localgroup.ServeEcho(ctx, ln, *name) })
	for _, t := range targets {
		p := &pinger{from: *name, target: t, timeout: *timeout, out: out}
		wg.Go(func() { p.run(ctx, *interval) })
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// pingTarget is one peer to ping: its name ("" when not given) and the
// address that reaches it.
type pingTarget struct {
	Name string
	Addr string
}

// parsePingTargets parses "[NAME=]ADDR,[NAME=]ADDR".
func parsePingTargets(s string) ([]pingTarget, error) {
	var ts []pingTarget
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		var t pingTarget
		if n, a, ok := strings.Cut(item, "="); ok {
			t = pingTarget{Name: n, Addr: a}
		} else {
			t = pingTarget{Addr: item}
		}
		if _, _, err := net.SplitHostPort(t.Addr); err != nil || (strings.Contains(item, "=") && t.Name == "") {
			return nil, fmt.Errorf("want [NAME=]HOST:PORT, got %q", item)
		}
		ts = append(ts, t)
	}
	return ts, nil
}

// memberFromConfig returns member's service address for channel and a
// ping target per other member, from the cluster file at path.
func memberFromConfig(path, member, channel string) (string, []pingTarget, error) {
	cfg, err := cluster.LoadConfig(path)
	if err != nil {
		return "", nil, err
	}
	plan, err := cfg.Plan(member, os.LookupEnv)
	if err != nil {
		return "", nil, err
	}
	return planTargets(plan, channel)
}

// planTargets picks channel's delivery address and outbound routes from
// plan. An empty channel means the plan's only channel.
func planTargets(plan *cluster.Plan, channel string) (string, []pingTarget, error) {
	if channel == "" {
		if len(plan.Inbound) != 1 {
			var names []string
			for _, d := range plan.Inbound {
				names = append(names, d.Channel)
			}
			return "", nil, fmt.Errorf("the cluster file has %d channels (%s): choose one with --channel", len(names), strings.Join(names, ", "))
		}
		channel = plan.Inbound[0].Channel
	}
	var listen string
	for _, d := range plan.Inbound {
		if d.Channel == channel {
			listen = d.Target
		}
	}
	if listen == "" {
		return "", nil, fmt.Errorf("channel %q: no such channel in the cluster file", channel)
	}
	var ts []pingTarget
	for _, r := range plan.Outbound {
		if r.Channel == channel && r.Listen != "" {
			ts = append(ts, pingTarget{Name: r.Peer, Addr: r.Listen})
		}
	}
	if plan.Capture != nil { // drop-in mode: the peers at their own addresses
		for _, c := range plan.Capture.Targets {
			if c.Channel == channel {
				ts = append(ts, pingTarget{Name: c.Member, Addr: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))})
			}
		}
	}
	return listen, ts, nil
}

// pinger pings one target over a kept-open connection, dialing again
// after any failure.
type pinger struct {
	from    string
	target  pingTarget
	timeout time.Duration
	out     io.Writer

	conn net.Conn
	rd   *bufio.Reader
	seq  int
}

func (p *pinger) run(ctx context.Context, interval time.Duration) {
	defer func() {
		if p.conn != nil {
			p.conn.Close()
		}
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		p.ping(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ping sends one line and checks the echo, printing the result.
func (p *pinger) ping(ctx context.Context) {
	p.seq++
	connState := "reused"
	start := time.Now()
	err := func() error {
		if p.conn == nil {
			connState = "new"
			d := net.Dialer{Timeout: p.timeout}
			c, err := d.DialContext(ctx, "tcp", p.target.Addr)
			if err != nil {
				return err
			}
			p.conn, p.rd = c, bufio.NewReader(c)
		}
		if err := p.conn.SetDeadline(time.Now().Add(p.timeout)); err != nil {
			return err
		}
		msg := fmt.Sprintf("ping %d from %s", p.seq, p.from)
		if _, err := fmt.Fprintf(p.conn, "%s\n", msg); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		line, err := p.rd.ReadString('\n')
		if err != nil {
			return fmt.Errorf("read reply: %w", err)
		}
		peer, echoed, ok := strings.Cut(strings.TrimSuffix(line, "\n"), ": ")
		if !ok || echoed != msg {
			return fmt.Errorf("unexpected reply %q", line)
		}
		if p.target.Name != "" && peer != p.target.Name {
			return fmt.Errorf("answered by %s, not %s", peer, p.target.Name)
		}
		return nil
	}()
	to := p.target.Name
	if to == "" {
		to = "?"
	}
	if err != nil {
		if p.conn != nil {
			p.conn.Close()
			p.conn, p.rd = nil, nil
		}
		if ctx.Err() != nil {
			return
		}
		fmt.Fprintf(p.out, "ping from=%s to=%s addr=%s result=fail conn=%s err=%q\n", p.from, to, p.target.Addr, connState, err.Error())
		return
	}
	fmt.Fprintf(p.out, "ping from=%s to=%s addr=%s result=ok rtt=%s conn=%s\n", p.from, to, p.target.Addr, time.Since(start).Round(time.Microsecond), connState)
}

// lockedWriter serialises writes so each result line stays whole.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
