// Command gwidle measures what an idle link costs inside groupwire: it
// runs a two-member VERIFY_IDENTITY (or -mode) group in this process
// (internal/localgroup), opens -links links through it, each with one round
// trip, and reports the live heap and goroutine stack per link after a
// full GC, optionally writing a heap profile. Unlike the RSS that
// bench/run.sh reads, these figures leave out the GC's headroom and the
// handshakes' garbage that the runtime has not yet returned to the OS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/groupwire/groupwire/internal/localgroup"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gwidle:", err)
		os.Exit(1)
	}
}

func run() error {
	links := flag.Int("links", 1000, "idle links to open")
	mode := flag.String("mode", "VERIFY_IDENTITY", "ssl_mode of the group")
	prefix := flag.String("ip-prefix", "127.0.77", "first three octets of the members' loopback addresses")
	heapProfile := flag.String("heapprofile", "", "write a heap profile (in-use) here while the links are held")
	flag.Parse()
	dir, err := os.MkdirTemp("", "gwidle")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	g, err := localgroup.Prepare(localgroup.Options{Dir: dir, Members: []string{"a", "b"}, Channels: []string{"group"}, Mode: *mode, IPPrefix: *prefix, NoEcho: true})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := startService(g.ServiceAddr("b", "group"))
	if err != nil {
		return err
	}
	defer svc.stop()
	r, err := g.Start(ctx, zerolog.Nop())
	if err != nil {
		return err
	}
	defer r.Stop()

	heap0, stack0 := liveMemory()
	conns := make([]net.Conn, 0, *links)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range *links {
		c, err := roundTrip(g.TunnelAddr("a", "b", "group"))
		if err != nil {
			return fmt.Errorf("link %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	time.Sleep(time.Second) // let both sides finish their setup
	heap1, stack1 := liveMemory()
	n := float64(*links)
	fmt.Printf("%s, %d idle links, both sidecars and the service together, after GC:\n", *mode, *links)
	fmt.Printf("  live heap  %6.1f KiB per link\n", float64(heap1-heap0)/n/1024)
	fmt.Printf("  stacks     %6.1f KiB per link (%d goroutines per link, service included)\n", float64(stack1-stack0)/n/1024, 5)
	if *heapProfile != "" {
		f, err := os.Create(*heapProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			return fmt.Errorf("write %s: %w", *heapProfile, err)
		}
	}
	return nil
}

// liveMemory returns the in-use heap and stack bytes after two full GCs
// (the second frees what the first's finalizers released and shrinks
// stacks again).
func liveMemory() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, m.StackInuse
}

// roundTrip opens a link through the group and echoes 32 bytes over it.
func roundTrip(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 32)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(msg); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := io.ReadFull(c, msg); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// service is member b's echo service with one small buffer per link, so
// that it adds as little as possible to the figures.
type service struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func startService(addr string) (*service, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	s := &service{ln: ln}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

func (s *service) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				fmt.Fprintln(os.Stderr, "gwidle: service:", err)
			}
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			b := make([]byte, 64)
			for {
				n, err := c.Read(b)
				if err != nil {
					return
				}
				if _, err := c.Write(b[:n]); err != nil {
					return
				}
			}
		}()
	}
}

func (s *service) stop() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
