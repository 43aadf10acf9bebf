package transport

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/groupwire/groupwire/internal/rawio"
)

// Socket is the TCP socket under a link's tls.Conn. It does three things
// crypto/tls cannot be asked to do:
//
//   - It notes whether the socket itself reached end of stream: crypto/tls
//     returns io.EOF after a close_notify without reading the socket to its
//     end, so a tls.Conn that reports io.EOF over a socket that has ended
//     saw no close_notify (see Link.EndOfStream).
//   - Between BeginBatch and EndBatch it gathers what is written to it into
//     the caller's buffer and writes that in one syscall: crypto/tls writes
//     each record of a Write with a syscall of its own.
//   - Inside ReadReady's callback, a read that would wait returns
//     ErrWouldBlock at once instead. crypto/tls keeps a partial record and
//     takes a temporary error as retryable, so the relay can move every
//     record that is ready and park only when the kernel has nothing, in
//     the same poller call: no read deadline, and no peek to catch a
//     readiness edge lost between two calls.
//
// Writes are safe from several goroutines (crypto/tls's reading side
// writes too, answering a KeyUpdate); reads belong to one.
type Socket struct {
	*net.TCPConn
	rc    syscall.RawConn
	ended atomic.Bool

	// Owned by the reader, set while ReadReady's callback runs.
	readyFD   int                // the socket's descriptor; -1 outside the callback
	readyF    func() bool        // ReadReady's callback
	readyCall func(uintptr) bool // s.callReady, made once

	mu    sync.Mutex
	batch []byte        // non-nil between BeginBatch and EndBatch
	raw   *rawio.Writer // guarded by mu: every write goes through it
}

// ErrWouldBlock is what a read inside ReadReady's callback returns when
// the kernel holds no bytes. It is a temporary timeout, so crypto/tls keeps
// the connection usable, and it has a WouldBlock method, by which the
// relay tells it from a real error: a socket that timed out (ETIMEDOUT) is
// a timeout too, and must end the link.
var ErrWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string    { return "socket read would block" }
func (wouldBlock) Timeout() bool    { return true }
func (wouldBlock) Temporary() bool  { return true }
func (wouldBlock) WouldBlock() bool { return true }

// NewSocket wraps a link's TCP socket, to go under its tls.Conn.
func NewSocket(c *net.TCPConn) *Socket {
	s := &Socket{TCPConn: c}
	s.rc, _ = c.SyscallConn() // a live *net.TCPConn always has one
	s.raw = rawio.NewWriter(s.rc)
	s.readyFD = -1
	s.readyCall = s.callReady
	return s
}

// Read reads the socket, noting its end.
func (s *Socket) Read(p []byte) (int, error) {
	var n int
	var err error
	if s.readyFD >= 0 {
		n, err = s.readNow(p)
	} else {
		n, err = s.TCPConn.Read(p)
	}
	if errors.Is(err, io.EOF) {
		s.ended.Store(true)
	}
	return n, err
}

// ReadReady calls f, and again each time the socket becomes readable
// while f returns false, until f returns true. While f runs, a read of the
// socket never waits: one that would returns ErrWouldBlock. Every call of f
// starts after the poller was armed, so bytes that arrive once a read saw
// none wake it. Only the reading goroutine may call it. It returns what
// ends the wait early: a passed read deadline or the socket's close.
func (s *Socket) ReadReady(f func() bool) error {
	s.readyF = f
	err := s.rc.Read(s.readyCall)
	s.readyF = nil
	return err
}

func (s *Socket) callReady(fd uintptr) bool {
	s.readyFD = int(fd)
	done := s.readyF()
	s.readyFD = -1
	return done
}

// readNow reads the socket once without waiting.
func (s *Socket) readNow(p []byte) (int, error) {
	for {
		n, errno := rawio.Read(s.readyFD, p)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			return 0, ErrWouldBlock
		case errno != 0:
			return 0, os.NewSyscallError("read", errno)
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes p, or gathers it into the batch buffer while one is open
// (writing what gathered first when p does not fit).
func (s *Socket) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batch == nil {
		return s.raw.Write(p)
	}
	if len(s.batch)+len(p) > cap(s.batch) {
		if err := s.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(s.batch) {
			return s.raw.Write(p)
		}
	}
	s.batch = append(s.batch, p...)
	return len(p), nil
}

// BeginBatch gathers writes into buf (its capacity) until EndBatch.
func (s *Socket) BeginBatch(buf []byte) {
	s.mu.Lock()
	s.batch = buf[:0]
	s.mu.Unlock()
}

// EndBatch writes what gathered since BeginBatch in one write and stops
// gathering; the buffer is the caller's again.
func (s *Socket) EndBatch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.flushLocked()
	s.batch = nil
	return err
}

func (s *Socket) flushLocked() error {
	if len(s.batch) == 0 {
		return nil
	}
	nw, err := s.raw.Write(s.batch)
	if err == nil && nw != len(s.batch) {
		err = io.ErrShortWrite
	}
	s.batch = s.batch[:0]
	return err
}
