//go:build !linux

package relay

import (
	"crypto/tls"
	"io"
	"net"
)

// copyFromTCP is the member→TLS leg: a plain loop through one pooled
// buffer, held while the goroutine waits for bytes. (Linux's version takes
// the buffer only once the socket is readable.)
func copyFromTCP(dst Endpoint, src *net.TCPConn, pool *Pool) (int64, error) {
	return copyBuffered(dst.Conn, src, pool)
}

// copyFromTLS is the peer→member leg, the same plain loop.
func copyFromTLS(dst io.Writer, src *tls.Conn, _ Endpoint, pool *Pool) (int64, error) {
	return copyBuffered(dst, src, pool)
}

// copyBuffered copies src to dst through a pooled buffer until src ends.
func copyBuffered(dst io.Writer, src io.Reader, pool *Pool) (int64, error) {
	bp := pool.get(false)
	defer pool.put(bp)
	var total int64
	for {
		nr, rerr := src.Read(*bp)
		if nr > 0 {
			nw, werr := writeAll(dst, (*bp)[:nr])
			total += int64(nw)
			if werr != nil {
				return total, werr
			}
		}
		if rerr != nil {
			return total, endOfStream(rerr)
		}
	}
}
