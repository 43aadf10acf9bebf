package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// serveMain runs the server on every address given until SIGINT/SIGTERM.
func serveMain(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.30:7002", "comma-separated addresses to listen on (loopback only, unless in a network namespace of its own)")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var lns []net.Listener
	for _, a := range strings.Split(*listen, ",") {
		if err := requireLoopback(a); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return fmt.Errorf("listen %s: %w", a, err)
		}
		lns = append(lns, ln)
	}
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acceptLoop(ln, &wg)
		}()
	}
	fmt.Fprintln(os.Stderr, "gwload: serving on", *listen)
	<-ctx.Done()
	for _, ln := range lns {
		ln.Close()
	}
	wg.Wait()
	return nil
}

// requireLoopback refuses an address outside 127.0.0.0/8 unless this
// process runs in a named network namespace (bench/dropin.sh makes
// them): the benchmark must never touch a real network.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() == nil {
		return fmt.Errorf("address %q: not an IPv4 address", addr)
	}
	if ip.IsLoopback() || inPrivateNetns() {
		return nil
	}
	return fmt.Errorf("address %q: not a 127.0.0.x address, and this process shares the host's network namespace", addr)
}

// inPrivateNetns reports whether this process runs in a named network
// namespace, one that `ip netns add` made (a file under /run/netns), as
// bench/dropin.sh does: the host's own namespace has no such name.
func inPrivateNetns() bool {
	var self unix.Stat_t
	if unix.Stat("/proc/self/ns/net", &self) != nil {
		return false
	}
	names, _ := filepath.Glob("/run/netns/*")
	for _, n := range names {
		var st unix.Stat_t
		if unix.Stat(n, &st) == nil && st.Dev == self.Dev && st.Ino == self.Ino {
			return true
		}
	}
	return false
}

// acceptLoop serves connections until ln is closed. Connections are not
// tracked: each ends when its client closes, and the process exits after.
func acceptLoop(ln net.Listener, wg *sync.WaitGroup) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				fmt.Fprintln(os.Stderr, "gwload: accept:", err)
			}
			return
		}
		go serveConn(c.(*net.TCPConn))
	}
}

func serveConn(c *net.TCPConn) {
	defer c.Close()
	_ = c.SetNoDelay(true)
	var op [1]byte
	if _, err := io.ReadFull(c, op[:]); err != nil {
		return
	}
	switch op[0] {
	case opSink:
		n, _ := io.Copy(io.Discard, c)
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(n))
		_, _ = c.Write(b[:])
	case opSource:
		buf := make([]byte, chunkSize)
		go func() { _, _ = io.Copy(io.Discard, c); c.Close() }() // the client's close ends the source
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	case opEcho:
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				_ = c.CloseWrite()
				return
			}
		}
	}
}
