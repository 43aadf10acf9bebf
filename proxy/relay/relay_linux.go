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

	"golang.org/x/sys/unix"

	"github.com/groupwire/groupwire/internal/rawio"
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
		n, errno := rawio.Read(int(fd), buf)
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			r.release()
			return false
		case errno != 0:
			r.err = os.NewSyscallError("read", errno)
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
// readable socket is not the only sign of bytes ready. Each turn reads
// inside the link socket's readiness callback, where a read never waits
// (see Socket.ReadReady), gathering every record crypto/tls can return at
// once; they go to the member in one write, outside the callback, so a
// close of the link never waits on a slow member. Only when crypto/tls has
// nothing, whole or from the kernel, does the goroutine park, holding no
// buffer.
func copyFromTLS(dst io.Writer, src *tls.Conn, ep Endpoint, pool *Pool) (int64, error) {
	if ep.Socket == nil {
		return 0, errors.New("relay: a TLS endpoint needs the Socket under its tls.Conn")
	}
	dst = rawWriter(dst)
	g := gatherer{src: src, pool: pool}
	g.fn = g.readReady
	var total int64
	for {
		n, err := g.gather(ep.Socket, dst)
		total += n
		switch {
		case err == nil, wouldBlock(err):
			// a short record went out at once, or the kernel had no more
			// for now: the next turn reads again or parks
		default:
			return total, endOfStream(err)
		}
	}
}

// rawWriter writes to a plain TCP member socket with raw system calls
// (package rawio); any other writer is used as it is.
func rawWriter(w io.Writer) io.Writer {
	if tc, ok := w.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			return rawio.NewWriter(rc)
		}
	}
	return w
}

// gatherer moves decrypted records from a tls.Conn to the member. Its
// callback is a method value made once, so a turn allocates nothing.
type gatherer struct {
	src   *tls.Conn
	pool  *Pool
	large bool    // the last turn filled its buffer: take a large one
	buf   *[]byte // held from a turn that read bytes until they are written
	n     int
	err   error
	fn    func() bool
}

// gather waits until records are ready and writes them to dst in one
// write. It returns the bytes moved and the error that stopped the reads:
// nil after a short record, would-block when nothing more was ready.
func (g *gatherer) gather(sock Socket, dst io.Writer) (int64, error) {
	if err := sock.ReadReady(g.fn); err != nil {
		return 0, err
	}
	bp, n, rerr := g.buf, g.n, g.err
	g.buf = nil
	defer g.pool.put(bp)
	if n > 0 {
		if nw, werr := writeAll(dst, (*bp)[:n]); werr != nil {
			return int64(nw), werr
		}
	}
	return int64(n), rerr
}

// readReady runs inside the socket's readiness callback. It reads every
// record crypto/tls can return without waiting into one pooled buffer,
// stopping after a short record so that a lone small message is written
// at once rather than after one more read. With nothing read and nothing
// ended it gives the buffer back and asks to wait (false).
func (g *gatherer) readReady() bool {
	bp := g.pool.get(g.large)
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
	if off == 0 && wouldBlock(rerr) {
		g.pool.put(bp)
		return false
	}
	g.large = off == len(buf)
	g.buf, g.n, g.err = bp, off, rerr
	return true
}
