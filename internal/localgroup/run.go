package localgroup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/proxy"
)

// Running is a started group: every member's sidecar and echo services.
type Running struct {
	Group    *Group
	Sidecars map[string]*proxy.Sidecar
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	errs     chan error
}

// Start starts every member's echo services and sidecar and waits until
// every listener is bound. Stop ends them.
func (g *Group) Start(ctx context.Context, log zerolog.Logger) (*Running, error) {
	ctx, cancel := context.WithCancel(ctx)
	r := &Running{Group: g, Sidecars: make(map[string]*proxy.Sidecar), cancel: cancel, errs: make(chan error, len(g.Members))}
	for _, m := range g.Members {
		for _, ch := range g.Channels {
			if g.noEcho {
				break
			}
			echo, err := ListenEcho(ctx, m.Name, g.ServiceAddr(m.Name, ch))
			if err != nil {
				r.Stop()
				return nil, err
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				<-ctx.Done()
				echo.Close()
			}()
		}
		sc, err := g.Sidecar(m.Name, proxy.Options{Logger: log, DrainTimeout: time.Second})
		if err != nil {
			r.Stop()
			return nil, fmt.Errorf("sidecar %s: %w", m.Name, err)
		}
		r.Sidecars[m.Name] = sc
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := sc.Run(ctx); err != nil {
				r.errs <- fmt.Errorf("sidecar %s: %w", m.Name, err)
				cancel()
			}
		}()
	}
	for name, sc := range r.Sidecars {
		select {
		case <-sc.Ready():
		case err := <-r.errs:
			r.Stop()
			return nil, err
		case <-time.After(10 * time.Second):
			r.Stop()
			return nil, fmt.Errorf("sidecar %s did not start within 10s", name)
		}
	}
	return r, nil
}

// Stop stops every sidecar and service and waits for them.
func (r *Running) Stop() {
	r.cancel()
	r.wg.Wait()
}

// Ping sends one line from member from to member to over channel through
// both sidecars and checks the echo. It returns the round-trip time.
func (g *Group) Ping(ctx context.Context, from, to, channel, msg string) (time.Duration, error) {
	start := time.Now()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(g.Member(from).IP)}}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", g.TunnelAddr(from, to, channel))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		return 0, err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("link closed before the echo (see the sidecar logs for why)")
		}
		return 0, err
	}
	if want := to + ": " + msg + "\n"; line != want {
		return 0, fmt.Errorf("echo %q, want %q", line, want)
	}
	return time.Since(start), nil
}
