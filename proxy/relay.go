package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
)

// relayBufferSize is the size of a pooled relay buffer: one full TLS
// record, which is the most a tls.Conn returns from one Read and the most
// it puts in one record on Write.
const relayBufferSize = 16 << 10

// bufferPool hands out relay buffers, so the steady-state copy allocates
// nothing per chunk.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any {
		b := make([]byte, relayBufferSize)
		return &b
	}}}
}

func (p *bufferPool) get() *[]byte  { return p.pool.Get().(*[]byte) }
func (p *bufferPool) put(b *[]byte) { p.pool.Put(b) }

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
// (TCPConn.ReadFrom); otherwise one pooled buffer carries them, read
// straight into and written straight from, so encryption is the only copy.
func pipe(dst, src endpoint, pool *bufferPool) (int64, error) {
	var n int64
	var err error
	if d, ok := dst.conn.(*net.TCPConn); ok && src.conn == net.Conn(src.raw) {
		n, err = d.ReadFrom(src.raw)
	} else {
		n, err = copyBuffered(dst.conn, src.conn, pool)
	}
	if err == nil {
		dst.closeWrite()
	}
	return n, err
}

// copyBuffered is the TLS leg of the relay: an explicit read/write loop
// over a pooled buffer. io.CopyBuffer would ignore the buffer because
// *net.TCPConn implements ReaderFrom and WriterTo (golang/go#16474) and fall
// back to a fresh 32 KiB buffer per call.
func copyBuffered(dst io.Writer, src io.Reader, pool *bufferPool) (int64, error) {
	bp := pool.get()
	defer pool.put(bp)
	buf := *bp
	var total int64
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			total += int64(nw)
			if werr != nil {
				return total, werr
			}
			if nw != nr {
				return total, io.ErrShortWrite
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return total, nil
			}
			return total, rerr
		}
	}
}
