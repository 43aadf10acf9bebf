package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// relayBufferSize is the size of a pooled relay buffer: one full TLS
// record, which is the most a tls.Conn returns from one Read and the most
// it puts in one record on Write.
const relayBufferSize = 16 << 10

// bufferPool hands out relay buffers, so the steady-state copy allocates
// nothing per chunk. A relay takes a buffer only while bytes are ready to
// move, so an idle link holds none; inUse counts the buffers out.
type bufferPool struct {
	pool  sync.Pool
	inUse atomic.Int64
}

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any {
		b := make([]byte, relayBufferSize)
		return &b
	}}}
}

func (p *bufferPool) get() *[]byte {
	p.inUse.Add(1)
	return p.pool.Get().(*[]byte)
}

func (p *bufferPool) put(b *[]byte) {
	p.inUse.Add(-1)
	p.pool.Put(b)
}

// endpoint is one side of a link: the connection bytes are read from and
// written to, and the TCP socket under it.
type endpoint struct {
	conn net.Conn     // *net.TCPConn, or *tls.Conn over raw
	raw  *net.TCPConn // the socket
}

// closeWrite half-closes the endpoint: TLS close_notify first (so the peer
// sees a clean end of stream), then FIN.
func (e endpoint) closeWrite() {
	if tc, ok := e.conn.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
	_ = e.raw.CloseWrite()
}

// pipe copies src to dst until src ends, then half-closes dst. It returns
// the bytes written to dst and the error that stopped it (nil for a clean
// end of stream). When both ends are plain TCP the kernel splices the bytes
// (TCPConn.ReadFrom); otherwise a pooled buffer carries them, read straight
// into and written straight from, so encryption is the only copy, and the
// buffer is taken only once bytes are ready, so an idle link holds none.
func pipe(dst, src endpoint, pool *bufferPool) (int64, error) {
	var n int64
	var err error
	switch sc := src.conn.(type) {
	case *net.TCPConn:
		if d, ok := dst.conn.(*net.TCPConn); ok {
			n, err = d.ReadFrom(sc)
		} else {
			n, err = copyFromTCP(dst.conn, sc, pool)
		}
	case *tls.Conn:
		n, err = copyFromTLS(dst.conn, sc, src.raw, pool)
	default:
		err = fmt.Errorf("relay: unsupported source connection %T", src.conn)
	}
	if err == nil {
		dst.closeWrite()
	}
	return n, err
}

// copyFromTCP is the member→TLS leg. It reads inside the socket's
// readiness callback, so the buffer is taken from the pool only when the
// kernel has bytes for it and given back before the goroutine parks: the
// same syscalls as a blocking Read, and no buffer held while idle.
// (io.CopyBuffer would not do: it ignores its buffer because *net.TCPConn
// implements ReaderFrom and WriterTo, golang/go#16474.)
func copyFromTCP(dst io.Writer, src *net.TCPConn, pool *bufferPool) (int64, error) {
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
			nw, werr = dst.Write((*r.buf)[:n])
		}
		r.release()
		total += int64(nw)
		switch {
		case werr != nil:
			return total, werr
		case nw != n:
			return total, io.ErrShortWrite
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
	pool *bufferPool
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
func copyFromTLS(dst io.Writer, src *tls.Conn, raw *net.TCPConn, pool *bufferPool) (int64, error) {
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
			n, moved, err := readTLS(dst, src, pool, true)
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
		n, _, err := readTLS(dst, src, pool, false)
		total += n
		if err != nil {
			return total, endOfStream(err)
		}
		streaming = n == maxRecordPlaintext
	}
}

// maxRecordPlaintext is the most one TLS record carries, and so the most
// one tls.Conn Read returns.
const maxRecordPlaintext = 16 << 10

// endOfStream maps io.EOF, a clean end, to nil.
func endOfStream(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// readTLS moves one Read's worth from src to dst through a pooled buffer.
// With probe it reads under a past deadline and reports moved=false, with
// no error, when crypto/tls holds nothing.
func readTLS(dst io.Writer, src *tls.Conn, pool *bufferPool, probe bool) (int64, bool, error) {
	bp := pool.get()
	defer pool.put(bp)
	buf := *bp
	if probe {
		if err := src.SetReadDeadline(pastDeadline); err != nil {
			return 0, false, err
		}
	}
	nr, rerr := src.Read(buf)
	if probe {
		if err := src.SetReadDeadline(time.Time{}); err != nil {
			return 0, false, err
		}
		if nr == 0 && errors.Is(rerr, os.ErrDeadlineExceeded) {
			return 0, false, nil
		}
	}
	var nw int
	var werr error
	if nr > 0 {
		nw, werr = dst.Write(buf[:nr])
	}
	switch {
	case werr != nil:
		return int64(nw), true, werr
	case nw != nr:
		return int64(nw), true, io.ErrShortWrite
	}
	return int64(nw), true, rerr
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
