package proxy_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
)

// serve accepts connections on addr and runs handle on each until the
// test ends.
func serve(t *testing.T, addr string, handle func(*net.TCPConn)) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c.(*net.TCPConn))
			}()
		}
	}()
}

// dialFrom dials addr from member's loopback address.
func dialFrom(t *testing.T, g *localgroup.Group, member, addr string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(g.Member(member).IP)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// stream writes n pseudo-random bytes from seed to w, then half-closes,
// and returns their SHA-256.
func stream(c *net.TCPConn, seed uint64, n int64) ([32]byte, error) {
	h := sha256.New()
	var key [32]byte
	key[0] = byte(seed)
	src := io.LimitReader(rand.NewChaCha8(key), n)
	buf := make([]byte, 64<<10)
	if _, err := io.CopyBuffer(io.MultiWriter(struct{ io.Writer }{c}, h), struct{ io.Reader }{src}, buf); err != nil {
		return [32]byte{}, err
	}
	if err := c.CloseWrite(); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

// drain reads r to EOF and returns the byte count and SHA-256.
func drain(r io.Reader) (int64, [32]byte, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, struct{ io.Reader }{r}, make([]byte, 64<<10))
	return n, [32]byte(h.Sum(nil)), err
}

type transferResult struct {
	sentSum, gotSum [32]byte
	got             int64
	err             error
}

// exchange streams n bytes each way over c at once.
func exchange(c *net.TCPConn, seed uint64, n int64) transferResult {
	var r transferResult
	var werr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.sentSum, werr = stream(c, seed, n)
	}()
	r.got, r.gotSum, r.err = drain(c)
	<-done
	r.err = errors.Join(r.err, werr)
	return r
}

// TestBulkTransferBothWays moves 256 MiB each way through one
// VERIFY_IDENTITY link at once and checks SHA-256 at both ends; EOF at
// each end also shows that each member's half-close crossed the link.
func TestBulkTransferBothWays(t *testing.T) {
	size := int64(256 << 20)
	if raceEnabled || testing.Short() {
		size = 16 << 20
	}
	for _, mode := range []string{"VERIFY_IDENTITY", "DISABLED"} {
		t.Run(mode, func(t *testing.T) {
			g, _, logs := startGroup(t, localgroup.Options{Mode: mode, NoEcho: true})
			server := make(chan transferResult, 1)
			serve(t, g.ServiceAddr("mysql-2", "group"), func(c *net.TCPConn) {
				server <- exchange(c, 2, size)
			})
			start := time.Now()
			client := exchange(dialFrom(t, g, "mysql-1", g.TunnelAddr("mysql-1", "mysql-2", "group")), 1, size)
			var srv transferResult
			select {
			case srv = <-server:
			case <-time.After(60 * time.Second):
				t.Fatal("server side never finished")
			}
			elapsed := time.Since(start)
			for side, r := range map[string]transferResult{"mysql-1": client, "mysql-2": srv} {
				if r.err != nil {
					t.Fatalf("%s: %v\nlog:\n%s", side, r.err, logs)
				}
				if r.got != size {
					t.Fatalf("%s received %d bytes, want %d", side, r.got, size)
				}
			}
			if client.gotSum != srv.sentSum || srv.gotSum != client.sentSum {
				t.Fatal("SHA-256 differs between the ends")
			}
			t.Logf("%s: %d MiB each way in %v (%.0f MiB/s per direction)", mode, size>>20, elapsed, float64(size>>20)/elapsed.Seconds())
			logs.WaitFor(t, logWait, `"bytes_to_peer":`+fmt.Sprint(size), `"bytes_to_member":`+fmt.Sprint(size))
		})
	}
}

// TestHalfClose: the dialing member sends a request and shuts down its
// write side; the serving member sees EOF, answers and closes; the dialing
// member reads the whole answer and then EOF.
func TestHalfClose(t *testing.T) {
	for _, mode := range []string{"VERIFY_CA", "DISABLED"} {
		t.Run(mode, func(t *testing.T) {
			g, _, logs := startGroup(t, localgroup.Options{Mode: mode, NoEcho: true})
			serve(t, g.ServiceAddr("mysql-3", "recovery"), func(c *net.TCPConn) {
				req, err := io.ReadAll(c) // returns only at the dialer's FIN
				if err != nil {
					return
				}
				fmt.Fprintf(c, "got %d bytes: %s", len(req), req)
			})
			c := dialFrom(t, g, "mysql-2", g.TunnelAddr("mysql-2", "mysql-3", "recovery"))
			if _, err := c.Write([]byte("snapshot please")); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			answer, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read answer: %v\nlog:\n%s", err, logs)
			}
			if want := "got 15 bytes: snapshot please"; string(answer) != want {
				t.Fatalf("answer %q, want %q\nlog:\n%s", answer, want, logs)
			}
		})
	}
}

// TestManyConcurrentLinks opens many links at once between every pair.
func TestManyConcurrentLinks(t *testing.T) {
	// On one machine every peer dials from 127.0.0.1: 100 handshakes at once
	// come from one source, above the default max_handshakes_per_source.
	g, r, logs := startGroup(t, localgroup.Options{Mode: "VERIFY_IDENTITY", ExtraYAML: "limits: {max_handshakes_per_source: 256}\n"})
	const perPair = 25
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 6*2*perPair)
	conns := make(chan net.Conn, 6*2*perPair)
	for _, from := range g.Members {
		for _, to := range g.Members {
			if from.Name == to.Name {
				continue
			}
			for _, ch := range g.Channels {
				for i := range perPair {
					wg.Add(1)
					go func() {
						defer wg.Done()
						// Hold each link open until all are up, so they
						// are truly concurrent.
						d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from.IP)}}
						c, err := d.DialContext(ctx, "tcp", g.TunnelAddr(from.Name, to.Name, ch))
						if err != nil {
							errs <- err
							return
						}
						conns <- c
						msg := fmt.Sprintf("%d\n", i)
						if _, err := c.Write([]byte(msg)); err != nil {
							errs <- err
							return
						}
						buf := make([]byte, len(to.Name)+2+len(msg))
						c.SetReadDeadline(time.Now().Add(10 * time.Second))
						if _, err := io.ReadFull(c, buf); err != nil {
							errs <- fmt.Errorf("%s → %s [%s] #%d: %w", from.Name, to.Name, ch, i, err)
							return
						}
						if want := to.Name + ": " + msg; string(buf) != want {
							errs <- fmt.Errorf("got %q, want %q", buf, want)
						}
					}()
				}
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%v\nlog:\n%s", err, logs)
	}
	live := 0
	for _, sc := range r.Sidecars {
		live += len(sc.Links())
	}
	if want := 2 * 6 * 2 * perPair; live != want { // each link is live on both sidecars
		t.Errorf("%d live links on the sidecars, want %d", live, want)
	}
	close(conns)
	for c := range conns {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		live = 0
		for _, sc := range r.Sidecars {
			live += len(sc.Links())
		}
		if live == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d links still live after every member closed", live)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
