// Command gwsoak runs a three-member group on this machine for a set time
// under steady mixed traffic, every byte checked end to end, while every
// member's certificate is rotated every few seconds and one member's is
// periodically revoked and re-issued. It reports bytes and messages
// verified, links broken that should have stayed up, corrupted bytes, how
// long each revocation took to cut the revoked member off, and the
// process's RSS and goroutines over time. It exits 1 when a link broke
// that should not have, or a byte came back wrong.
//
//	go run ./bench/cmd/gwsoak -duration 10m
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/internal/localgroup"
)

func main() {
	o := options{}
	flag.DurationVar(&o.duration, "duration", time.Minute, "how long to run")
	flag.DurationVar(&o.rotate, "rotate", 3*time.Second, "how often every member's certificate is re-issued")
	flag.DurationVar(&o.revoke, "revoke", 20*time.Second, "how often mysql-3's certificate is revoked (and re-issued 3 s later)")
	flag.StringVar(&o.ipPrefix, "ip-prefix", "127.0.77", "first three octets of the members' loopback addresses")
	flag.Parse()
	r, err := run(context.Background(), o, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gwsoak:", err)
		os.Exit(2)
	}
	if !r.ok() {
		os.Exit(1)
	}
}

type options struct {
	duration, rotate, revoke time.Duration
	ipPrefix                 string
}

// run starts the group and the workers, drives the PKI until the duration
// is over, and prints the report.
func run(ctx context.Context, o options, out io.Writer) (*report, error) {
	dir, err := os.MkdirTemp("", "gwsoak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	g, err := localgroup.Prepare(localgroup.Options{Dir: dir, IPPrefix: o.ipPrefix, Channels: []string{"group"}, NoEcho: true,
		ExtraYAML: "reload_interval: 1h\n"})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	rep := newReport()
	for _, m := range g.Members {
		if err := serveEcho(ctx, g.ServiceAddr(m.Name, "group")); err != nil {
			return nil, err
		}
	}
	running, err := g.Start(context.Background(), zerolog.Nop())
	if err != nil {
		return nil, err
	}
	defer running.Stop()
	done := startWorkers(ctx, g, rep)
	go sampleProcess(ctx, rep)
	drivePKI(ctx, g, o, rep)
	done.Wait()
	rep.print(out, o)
	return rep, nil
}
