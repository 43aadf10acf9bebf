// Package relay is groupwire's byte pump: it moves one direction of a link
// between a member socket and a peer link, never parsing the bytes. Plain
// TCP to plain TCP is spliced by the kernel; a TLS side goes through pooled
// buffers, read straight into and written straight from, so encryption is
// the only copy, taken only while bytes are ready, so an idle link holds
// none. A streaming link moves in batches: a 256 KiB member read whose
// records leave in one write, and every ready record gathered into one
// member write. It carries half-close end to end. It knows nothing of
// channels, peers or policy.
//
// The readiness-driven, batched TLS and TCP loops are Linux's
// (relay_linux.go); elsewhere a plain pooled-buffer loop does the same job,
// record by record, holding its buffer while it waits.
package relay

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// BufferSize is the size of a small pooled relay buffer: one full TLS
// record, which is the most a tls.Conn returns from one Read and the most
// it puts in one record on Write.
const BufferSize = 16 << 10

// LargeBufferSize is the size of a large pooled buffer, taken once a link
// is streaming (its last read filled a buffer): one read or one write
// then moves up to 16 records, so a bulk stream pays a syscall per 256 KiB
// instead of per 16 KiB on each socket.
const LargeBufferSize = 256 << 10

// batchSlack is room kept free in a large read from the member, so the
// records crypto/tls makes of it (at most 29 bytes of header and tag each,
// 16 of them) fit one large batch buffer: one write to the link socket.
const batchSlack = 1 << 10

// Pool hands out relay buffers, so the steady-state copy allocates nothing
// per chunk. Share one Pool among all the links of a process.
type Pool struct {
	small, large sync.Pool
	// inUse, when set (by tests), counts the buffers out of the pool: an
	// idle link must hold none. Nil in production: no atomic per buffer.
	inUse *atomic.Int64
}

// NewPool returns an empty Pool of BufferSize and LargeBufferSize buffers.
func NewPool() *Pool {
	return &Pool{
		small: sync.Pool{New: func() any { b := make([]byte, BufferSize); return &b }},
		large: sync.Pool{New: func() any { b := make([]byte, LargeBufferSize); return &b }},
	}
}

func (p *Pool) get(large bool) *[]byte {
	if p.inUse != nil {
		p.inUse.Add(1)
	}
	if large {
		return p.large.Get().(*[]byte)
	}
	return p.small.Get().(*[]byte)
}

func (p *Pool) put(b *[]byte) {
	if p.inUse != nil {
		p.inUse.Add(-1)
	}
	if len(*b) == LargeBufferSize {
		p.large.Put(b)
		return
	}
	p.small.Put(b)
}

// Endpoint is one side of a link: the connection bytes are read from and
// written to (a *net.TCPConn, or a *tls.Conn over Raw), and the TCP socket
// under it.
type Endpoint struct {
	Conn net.Conn
	Raw  *net.TCPConn
	// EndOfStream, when set, classifies how reading Conn ended (nil for
	// io.EOF, else the error): nil means the stream is complete, an error
	// that it was cut short (a TLS peer whose socket ended without
	// close_notify). Pipe returns what it says and half-closes dst only on
	// nil, so an aborted stream never reaches the other side as a clean end.
	EndOfStream func(error) error
	// Socket is the socket under a TLS Conn (transport.Socket); the Linux
	// relay batches the records of one write into one syscall and reads
	// every ready record without waiting through it. Nil for plain TCP.
	Socket Socket
}

// Socket is what the relay asks of the socket under a tls.Conn:
// transport.Socket is one.
type Socket interface {
	// BeginBatch gathers what crypto/tls writes into buf until EndBatch,
	// which writes it in one syscall.
	BeginBatch(buf []byte)
	EndBatch() error
	// ReadReady calls f, and again each time the socket is readable while
	// f returns false, until f returns true. While f runs, a read that
	// would wait returns, at once, an error with a WouldBlock() method
	// that returns true.
	ReadReady(f func() bool) error
}

// TCP returns the Endpoint of a plain TCP connection.
func TCP(c *net.TCPConn) Endpoint { return Endpoint{Conn: c, Raw: c} }

// closeWrite half-closes the endpoint: TLS close_notify first (so the peer
// sees a clean end of stream), then FIN.
func (e Endpoint) closeWrite() {
	if tc, ok := e.Conn.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
	_ = e.Raw.CloseWrite()
}

// Pipe copies src to dst until src ends, then half-closes dst. It returns
// the bytes written to dst and the error that stopped it: nil only for a
// clean end of stream (see Endpoint.EndOfStream); on any other, dst is left
// for the caller to abort. When both ends are plain TCP the kernel splices
// the bytes (TCPConn.ReadFrom); otherwise a pooled buffer carries them.
func Pipe(dst, src Endpoint, pool *Pool) (int64, error) {
	var n int64
	var err error
	switch sc := src.Conn.(type) {
	case *net.TCPConn:
		if d, ok := dst.Conn.(*net.TCPConn); ok {
			n, err = d.ReadFrom(sc)
		} else {
			n, err = copyFromTCP(dst, sc, pool)
		}
	case *tls.Conn:
		n, err = copyFromTLS(dst.Conn, sc, src, pool)
	default:
		err = fmt.Errorf("relay: unsupported source connection %T", src.Conn)
	}
	if src.EndOfStream != nil {
		err = src.EndOfStream(err)
	}
	if err == nil {
		dst.closeWrite()
	}
	return n, err
}

// wouldBlock reports whether err is a Socket's "nothing to read yet", and
// nothing else: a socket that timed out (ETIMEDOUT) has a Timeout() error
// too, and ends the link.
func wouldBlock(err error) bool {
	if err == nil {
		return false
	}
	if wb, ok := err.(interface{ WouldBlock() bool }); ok {
		return wb.WouldBlock() // as crypto/tls returns it: no allocation
	}
	var wb interface{ WouldBlock() bool }
	return errors.As(err, &wb) && wb.WouldBlock()
}

// endOfStream maps io.EOF, a clean end, to nil.
func endOfStream(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// writeAll writes all of buf to dst, turning a short write into an error.
func writeAll(dst io.Writer, buf []byte) (int, error) {
	nw, err := dst.Write(buf)
	if err == nil && nw != len(buf) {
		err = io.ErrShortWrite
	}
	return nw, err
}
