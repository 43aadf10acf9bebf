package localgroup

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
)

// Echo is a tiny member service: it answers every line it reads with
// "<name>: <line>". It stands in for a database member in the demo.
type Echo struct {
	name   string
	ln     net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ListenEcho starts an echo service for member name on addr. It serves
// until ctx ends or Close is called.
func ListenEcho(ctx context.Context, name, addr string) (*Echo, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("echo service of %s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	e := &Echo{name: name, ln: ln, cancel: cancel}
	e.wg.Add(1)
	go e.serve(ctx)
	return e, nil
}

func (e *Echo) serve(ctx context.Context) {
	defer e.wg.Done()
	stop := context.AfterFunc(ctx, func() { e.ln.Close() })
	defer stop()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			stopConn := context.AfterFunc(ctx, func() { c.Close() })
			defer stopConn()
			sc := bufio.NewScanner(c)
			for sc.Scan() {
				if _, err := fmt.Fprintf(c, "%s: %s\n", e.name, sc.Text()); err != nil {
					return
				}
			}
		}()
	}
}

// Close stops the service and waits for its connections to end.
func (e *Echo) Close() {
	e.cancel()
	e.wg.Wait()
}
