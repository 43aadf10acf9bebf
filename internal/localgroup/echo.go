package localgroup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Echo is a tiny member service: it answers every line it reads with
// "<name>: <line>". It stands in for a database member in the demo, the
// tests and `groupwire member`.
type Echo struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// ListenEcho starts an echo service for member name on addr. It serves
// until ctx ends or Close is called.
func ListenEcho(ctx context.Context, name, addr string) (*Echo, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("echo service of %s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &Echo{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		ServeEcho(ctx, ln, name)
	}()
	return e, nil
}

// Close stops the service and waits for its connections to end.
func (e *Echo) Close() {
	e.cancel()
	<-e.done
}

// ServeEcho answers every line read on ln's connections with
// "<name>: <line>" until ctx ends, then closes ln and every connection and
// returns once their goroutines are done.
func ServeEcho(ctx context.Context, ln net.Listener, name string) {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) || !waitToAccept(ctx) {
				return
			}
			continue
		}
		conns.Go(func() { echoLines(ctx, c, name) })
	}
}

// waitToAccept pauses after a failed Accept (out of descriptors or the
// like) and reports whether to go on; a closed listener ends the service.
func waitToAccept(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(100 * time.Millisecond):
		return true
	}
}

// echoLines answers c's lines until it ends or ctx does.
func echoLines(ctx context.Context, c net.Conn, name string) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if _, err := fmt.Fprintf(c, "%s: %s\n", name, sc.Text()); err != nil {
			return
		}
	}
}
