//go:build linux

package relay

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// copyFromTCP is the member→TLS leg. It reads inside the socket's
// readiness callback, so the buffer is taken from the pool only when the
// kernel has bytes for it and given back before the goroutine parks: the
// same syscalls as a blocking Read, and no buffer held while idle.
// (io.CopyBuffer would not do: it ignores its buffer because *net.TCPConn
// implements ReaderFrom and WriterTo, golang/go#16474.)
func copyFromTCP(dst io.Writer, src *net.TCPConn, pool *Pool) (int64, error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("relay: member socket: %w", err)
	}
	r := tcpReader{pool: pool}
	var total int64
	for {
		n, rerr := r.read(rc)
		var nw int
		var werr error
		if n > 0 {
			nw, werr = writeAll(dst, (*r.buf)[:n])
		}
		r.release()
		total += int64(nw)
		switch {
		case werr != nil:
			return total, werr
		case rerr != nil:
			if errors.Is(rerr, io.EOF) {
				return total, nil
			}
			return total, rerr
		}
	}
}

// tcpReader reads a socket into a pooled buffer taken only when data is
// ready. Its read callback is a method value made once, so a read
// allocates nothing.
type tcpReader struct {
	pool *Pool
	buf  *[]byte // held from a successful read until release
	n    int
	err  error
	fn   func(fd uintptr) bool
}

// read waits until the socket is readable and reads it into r.buf. It
// returns io.EOF at the end of stream.
func (r *tcpReader) read(rc syscall.RawConn) (int, error) {
	if r.fn == nil {
		r.fn = r.readFD
	}
	r.n, r.err = 0, nil
	if err := rc.Read(r.fn); err != nil {
		return 0, err
	}
	return r.n, r.err
}

// readFD is called by the poller: true when done, false to wait for
// readability first.
func (r *tcpReader) readFD(fd uintptr) bool {
	if r.buf == nil {
		r.buf = r.pool.get()
	}
	for {
		n, err := unix.Read(int(fd), *r.buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			r.release()
			return false
		case err != nil:
			r.err = os.NewSyscallError("read", err)
		case n == 0:
			r.err = io.EOF
		default:
			r.n = n
		}
		return true
	}
}

func (r *tcpReader) release() {
	if r.buf != nil {
		r.pool.put(r.buf)
		r.buf = nil
	}
}

// pastDeadline is a read deadline that has passed: a Read under it returns
// what crypto/tls already holds, or a timeout at once.
var pastDeadline = time.Unix(1, 0)

// copyFromTLS is the peer→member leg. crypto/tls reads ahead, so a
// readable socket is not the only sign of bytes ready. Each turn peeks at
// the socket: readable means a Read will not park, so a pooled buffer is
// taken and Read; not readable means only crypto/tls can hold bytes, which
// a zero-deadline Read drains (a timeout there is not sticky: crypto/tls
// keeps a partial record and treats a temporary error as retryable), and
// only when that times out does the goroutine park on the socket, holding
// no buffer. A bulk stream thus costs one peek per record; the probe and
// its two small allocations (the timeout error) are paid only before
// parking. This goroutine owns src's read deadline.
func copyFromTLS(dst io.Writer, src *tls.Conn, raw *net.TCPConn, pool *Pool) (int64, error) {
	rc, err := raw.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("relay: link socket: %w", err)
	}
	w := readinessWaiter{}
	w.fn = w.check
	w.peekFn = w.peekOnce
	var total int64
	streaming := false // the last Read returned a full record
	for {
		// While full records keep coming the stream is busy: Read at once
		// and skip the peek, one syscall per record saved on bulk links.
		// After a short record, peek first so an idle link parks with no
		// buffer.
		ready := streaming
		if !ready {
			if ready, err = w.peek(rc); err != nil {
				return total, err
			}
		}
		if !ready {
			// The handshake, HELLO or ACCEPT, or the last Read, may have
			// pulled records off the socket: drain those first.
			n, moved, err := drainBuffered(dst, src, pool)
			total += n
			if err != nil {
				return total, endOfStream(err)
			}
			if moved {
				continue
			}
			if err := w.wait(rc); err != nil {
				return total, err
			}
		}
		n, err := readRecord(dst, src, pool)
		total += n
		if err != nil {
			return total, endOfStream(err)
		}
		streaming = n == BufferSize
	}
}

// readRecord moves one tls.Conn Read's worth, at most one record, from
// src to dst through a pooled buffer, and returns the bytes moved.
func readRecord(dst io.Writer, src *tls.Conn, pool *Pool) (int64, error) {
	bp := pool.get()
	defer pool.put(bp)
	nr, rerr := src.Read(*bp)
	if nr > 0 {
		if nw, werr := writeAll(dst, (*bp)[:nr]); werr != nil {
			return int64(nw), werr
		}
	}
	return int64(nr), rerr
}

// drainBuffered moves one record that crypto/tls already holds, without
// waiting on the socket: it reads under a past deadline and reports
// moved=false, with no error, when crypto/tls holds nothing.
func drainBuffered(dst io.Writer, src *tls.Conn, pool *Pool) (n int64, moved bool, err error) {
	if err := src.SetReadDeadline(pastDeadline); err != nil {
		return 0, false, err
	}
	n, err = readRecord(dst, src, pool)
	if derr := src.SetReadDeadline(time.Time{}); derr != nil {
		return n, true, derr
	}
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, false, nil
	}
	return n, true, err
}

// readinessWaiter tells whether a socket is readable without reading it,
// and parks until it is. A MSG_PEEK probe decides (data, end of stream or
// an error all count as ready), so a readiness edge consumed earlier
// cannot strand bytes. Its callbacks are method values made once, so
// neither allocates.
type readinessWaiter struct {
	polled bool
	ready  bool
	fn     func(fd uintptr) bool
	peekFn func(fd uintptr)
}

// peek reports whether the socket is readable now.
func (w *readinessWaiter) peek(rc syscall.RawConn) (bool, error) {
	if err := rc.Control(w.peekFn); err != nil {
		return false, err
	}
	return w.ready, nil
}

func (w *readinessWaiter) peekOnce(fd uintptr) { w.ready = peekReadable(fd) }

// wait parks until the socket is readable.
func (w *readinessWaiter) wait(rc syscall.RawConn) error {
	w.polled = false
	return rc.Read(w.fn)
}

func (w *readinessWaiter) check(fd uintptr) bool {
	if w.polled {
		return true // woken by the poller; a spurious wake-up only costs a blocking Read
	}
	w.polled = true
	return peekReadable(fd)
}

// peekReadable peeks one byte without waiting. It calls recvfrom directly:
// unix.Recvfrom allocates the (unused) source address.
func peekReadable(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		return errno != unix.EAGAIN
	}
}
