package transport

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
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
//   - With SetNonblocking(true), a read that would wait returns
//     ErrWouldBlock at once instead. crypto/tls keeps a partial record and
//     takes a temporary error as retryable, so the relay can move every
//     record that is ready and stop, without a read deadline or a peek.
//
// Writes are safe from several goroutines (crypto/tls's reading side
// writes too, answering a KeyUpdate); reads belong to one.
type Socket struct {
	*net.TCPConn
	rc    syscall.RawConn
	ended atomic.Bool

	nonblocking bool // owned by the reader
	nbFn        func(fd uintptr) bool
	nbN         int
	nbErr       error
	nbBuf       []byte

	mu    sync.Mutex
	batch []byte // non-nil between BeginBatch and EndBatch
}

// ErrWouldBlock is what a read of a nonblocking Socket returns when the
// kernel holds no bytes. It is a temporary timeout, so crypto/tls keeps
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
	s.nbFn = s.readOnce
	return s
}

// Read reads the socket, noting its end.
func (s *Socket) Read(p []byte) (int, error) {
	var n int
	var err error
	if s.nonblocking {
		n, err = s.readNonblocking(p)
	} else {
		n, err = s.TCPConn.Read(p)
	}
	if errors.Is(err, io.EOF) {
		s.ended.Store(true)
	}
	return n, err
}

// SetNonblocking switches reads that would wait to returning ErrWouldBlock.
// Only the reading goroutine may call it.
func (s *Socket) SetNonblocking(on bool) { s.nonblocking = on }

func (s *Socket) readNonblocking(p []byte) (int, error) {
	s.nbBuf, s.nbN, s.nbErr = p, 0, nil
	if err := s.rc.Read(s.nbFn); err != nil {
		return 0, err
	}
	s.nbBuf = nil
	return s.nbN, s.nbErr
}

// readOnce is the poller callback of a nonblocking read: it never asks to
// wait.
func (s *Socket) readOnce(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), s.nbBuf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			s.nbErr = ErrWouldBlock
		case err != nil:
			s.nbErr = os.NewSyscallError("read", err)
		case n == 0:
			s.nbErr = io.EOF
		default:
			s.nbN = n
		}
		return true
	}
}

// Write writes p, or gathers it into the batch buffer while one is open
// (writing what gathered first when p does not fit).
func (s *Socket) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batch == nil {
		return s.TCPConn.Write(p)
	}
	if len(s.batch)+len(p) > cap(s.batch) {
		if err := s.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > cap(s.batch) {
			return s.TCPConn.Write(p)
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
	nw, err := s.TCPConn.Write(s.batch)
	if err == nil && nw != len(s.batch) {
		err = io.ErrShortWrite
	}
	s.batch = s.batch[:0]
	return err
}
