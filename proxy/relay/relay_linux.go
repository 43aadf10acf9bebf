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
	"unsafe"

	"golang.org/x/sys/unix"
)

// copyFromTCP is the member→TLS leg. It reads inside the socket's
// readiness callback, so the buffer is taken from the pool only when the
// kernel has bytes for it and given back before the goroutine parks: the
// same syscalls as a blocking Read, and no buffer held while idle. Once a
// read fills its buffer the link is streaming and the next read takes a
// large one, whose records go to the link socket in one write.
// (io.CopyBuffer would not do: it ignores its buffer because *net.TCPConn
// implements ReaderFrom and WriterTo, golang/go#16474.)
func copyFromTCP(dst Endpoint, src *net.TCPConn, pool *Pool) (int64, error) {
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
			nw, werr = writeBatched(dst, (*r.buf)[:n], pool)
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

// writeBatched writes p to dst. More than one record's worth going to a
// TLS endpoint is gathered in a large pooled buffer under the tls.Conn, so
// all its records leave in one write instead of one write each.
func writeBatched(dst Endpoint, p []byte, pool *Pool) (int, error) {
	if dst.Socket == nil || len(p) <= BufferSize {
		return writeAll(dst.Conn, p)
	}
	bp := pool.get(true)
	defer pool.put(bp)
	dst.Socket.BeginBatch(*bp)
	nw, err := writeAll(dst.Conn, p)
	if ferr := dst.Socket.EndBatch(); err == nil {
		err = ferr
	}
	return nw, err
}

// tcpReader reads a socket into a pooled buffer taken only when data is
// ready. Its read callback is a method value made once, so a read
// allocates nothing.
type tcpReader struct {
	pool  *Pool
	buf   *[]byte // held from a successful read until release
	large bool    // the last read filled its buffer: take a large one
	n     int
	err   error
	fn    func(fd uintptr) bool
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
		r.buf = r.pool.get(r.large)
	}
	buf := *r.buf
	if r.large {
		buf = buf[:LargeBufferSize-batchSlack]
	}
	for {
		n, err := unix.Read(int(fd), buf)
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
			r.n, r.large = n, n == len(buf)
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

// copyFromTLS is the peer→member leg. crypto/tls reads ahead, so a
// readable socket is not the only sign of bytes ready. Each turn reads with
// the socket nonblocking (see gather), moving every record crypto/tls can
// return without waiting in one write to the member; only when the socket
// would block, so that crypto/tls holds no whole record either, does the
// goroutine park, holding no buffer.
func copyFromTLS(dst io.Writer, src *tls.Conn, ep Endpoint, pool *Pool) (int64, error) {
	if ep.Socket == nil {
		return 0, errors.New("relay: a TLS endpoint needs the Socket under its tls.Conn")
	}
	rc, err := ep.Raw.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("relay: link socket: %w", err)
	}
	w := readinessWaiter{}
	w.fn = w.check
	// This goroutine is the socket's only reader from here on: its reads
	// stay nonblocking for as long as it relays.
	ep.Socket.SetNonblocking(true)
	defer ep.Socket.SetNonblocking(false)
	g := gatherer{src: src, pool: pool}
	var total int64
	for {
		n, err := g.gather(dst)
		total += n
		switch {
		case err == nil: // a short record went out at once; look for more
		case wouldBlock(err):
			if err := w.wait(rc); err != nil {
				return total, err
			}
		default:
			return total, endOfStream(err)
		}
	}
}

// gatherer moves decrypted records from a tls.Conn over a nonblocking
// Socket to the member.
type gatherer struct {
	src   *tls.Conn
	pool  *Pool
	large bool // the last turn filled its buffer: take a large one
}

// gather reads every record crypto/tls can
// return without waiting into one pooled buffer, and writes them to dst in
// one write. It stops after a short record, so a lone small message is
// written at once rather than after one more read. It returns the bytes
// moved and the error that stopped the reads: nil after a short record, a
// timeout when nothing more was ready.
func (g *gatherer) gather(dst io.Writer) (int64, error) {
	bp := g.pool.get(g.large)
	defer g.pool.put(bp)
	buf := *bp
	off := 0
	var rerr error
	for off < len(buf) {
		n, err := g.src.Read(buf[off:])
		off += n
		if err != nil || n < BufferSize {
			rerr = err
			break
		}
	}
	g.large = off == len(buf)
	if off > 0 {
		if nw, werr := writeAll(dst, buf[:off]); werr != nil {
			return int64(nw), werr
		}
	}
	return int64(off), rerr
}

// readinessWaiter parks until a socket is readable. Its first check is a
// MSG_PEEK probe (data, end of stream or an error all count as ready), so
// a readiness edge consumed by an earlier read cannot strand bytes. Its
// callback is a method value made once, so a wait allocates nothing.
type readinessWaiter struct {
	polled bool
	fn     func(fd uintptr) bool
}

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
