package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/groupwire/groupwire/internal/localgroup"
)

// serveEcho runs a member's service: every byte sent is sent back.
func serveEcho(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				stop := context.AfterFunc(ctx, func() { c.Close() })
				defer stop()
				_, _ = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{c}, make([]byte, 64<<10))
			}()
		}
	}()
	return nil
}

// worker keeps one session open from one member to another and checks
// every byte that comes back; it reopens the session when it breaks.
type worker struct {
	g        *localgroup.Group
	from, to string
	bulk     bool // 256 KiB chunks rather than 64-byte messages
	rep      *report
}

// startWorkers runs a small-message worker for every ordered pair and two
// bulk ones; the returned group is done when ctx ends.
func startWorkers(ctx context.Context, g *localgroup.Group, rep *report) *sync.WaitGroup {
	var wg sync.WaitGroup
	var ws []*worker
	for _, from := range g.Members {
		for _, to := range g.Members {
			if from.Name != to.Name {
				ws = append(ws, &worker{g: g, from: from.Name, to: to.Name, rep: rep})
			}
		}
	}
	ws = append(ws, &worker{g: g, from: "mysql-1", to: "mysql-2", bulk: true, rep: rep},
		&worker{g: g, from: "mysql-3", to: "mysql-1", bulk: true, rep: rep})
	for _, w := range ws {
		wg.Go(func() { w.run(ctx) })
	}
	return &wg
}

func (w *worker) pair() string { return w.from + "→" + w.to }

func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(w.g.Member(w.from).IP)}}
		c, err := d.DialContext(ctx, "tcp", w.g.TunnelAddr(w.from, w.to, "group"))
		if err == nil {
			err = w.exchange(ctx, c)
			c.Close()
		}
		if ctx.Err() != nil {
			return
		}
		w.rep.broken(w.from, w.to, w.pair(), err)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// exchange sends and checks until ctx ends or the session breaks.
func (w *worker) exchange(ctx context.Context, c net.Conn) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	size := 64
	if w.bulk {
		size = 256 << 10
	}
	msg, got := make([]byte, size), make([]byte, size)
	for ctx.Err() == nil {
		rand.Read(msg)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := roundTrip(c, msg, got); err != nil {
			return err
		}
		if !bytes.Equal(msg, got) {
			w.rep.corrupted(w.pair(), size)
			return fmt.Errorf("%d bytes came back different", size)
		}
		w.rep.verified(w.pair(), size)
		if !w.bulk {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// roundTrip writes msg and, at the same time, reads its echo into got.
func roundTrip(c net.Conn, msg, got []byte) error {
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		werr <- err
	}()
	_, rerr := io.ReadFull(c, got)
	if err := <-werr; err != nil {
		return err
	}
	return rerr
}
