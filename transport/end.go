package transport

import (
	"errors"
	"fmt"
	"io"
)

// ErrNoCloseNotify is how a TLS link ends when the peer's socket closed
// without a TLS close_notify first: the peer's sidecar died or was cut off
// mid-stream. crypto/tls reports it as io.EOF, the same as a clean close,
// so Link.EndOfStream tells the two apart.
var ErrNoCloseNotify = errors.New("peer aborted: no close_notify")

// EndOfStream classifies how reading Conn ended, for its reader: err is
// nil when a Read returned io.EOF, else the error that stopped it. It
// returns nil only for a clean end of stream (a TLS close_notify; or,
// under DISABLED, a FIN, which cannot be told from a crash);
// ErrNoCloseNotify when the TLS peer's socket simply ended, at a record
// boundary (crypto/tls says io.EOF) or inside a record (it says
// io.ErrUnexpectedEOF); and err itself otherwise.
func (l *Link) EndOfStream(err error) error {
	switch {
	case l.sock == nil:
		return err
	case err == nil && l.sock.ended.Load():
		return ErrNoCloseNotify
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w (the socket ended mid-record)", ErrNoCloseNotify)
	}
	return err
}

// Abort ends the link as an abort: the socket is reset (SO_LINGER 0) and
// no close_notify is sent, so the peer's sidecar sees an abort too and
// passes it on to its member as a reset.
func (l *Link) Abort() {
	_ = l.Raw.SetLinger(0)
	_ = l.Raw.Close()
}
