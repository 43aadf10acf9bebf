package transport

// STUB FILE: the transport-options helper replaces everything here with real
// code in properly named files (mode.go, tlsversion.go, cipher.go,
// frame.go) and deletes this file. The signatures are the contract.

import (
	"errors"
	"io"
)

// Mode is a group_replication_ssl_mode value.
type Mode uint8

// The four ssl modes, in MySQL's order.
const (
	Disabled Mode = iota + 1
	Required
	VerifyCA
	VerifyIdentity
)

func (m Mode) String() string { return "" }

// ParseMode parses an ssl_mode value, case-insensitively.
func ParseMode(s string) (Mode, error) { return 0, errors.New("todo") }

// ParseTLSVersion parses MySQL's tls_version list ("TLSv1.2,TLSv1.3").
func ParseTLSVersion(s string) (min, max uint16, err error) { return 0, 0, errors.New("todo") }

// ParseCipherList parses an OpenSSL ssl_cipher string into Go TLS 1.2 suites.
func ParseCipherList(s string) (suites []uint16, dropped []string, err error) {
	return nil, nil, errors.New("todo")
}

// ParseTLS13Ciphersuites parses MySQL's tls_ciphersuites (colon separated
// TLS 1.3 suite names).
func ParseTLS13Ciphersuites(s string) ([]uint16, error) { return nil, errors.New("todo") }

// FrameType tells frames apart.
type FrameType uint8

// Frame types.
const (
	FrameHello  FrameType = 1
	FrameAccept FrameType = 2
	FrameRefuse FrameType = 3
)

// FrameHeaderLen is the size of a frame header: magic "GW", version, type,
// 16-bit big-endian body length.
const FrameHeaderLen = 6

// MaxFrameBody bounds a frame body.
const MaxFrameBody = 1024

// Hello is the first frame of a link, sent by the dialer.
type Hello struct {
	Mode    Mode   // the dialer's ssl_mode for this channel
	Channel string // channel name
	From    string // the dialing member
	To      string // the member the dialer means to reach
}

// RefuseCode says why a link was refused.
type RefuseCode uint8

// Refusal codes.
const (
	RefuseModeMismatch   RefuseCode = 1
	RefuseUnknownChannel RefuseCode = 2
	RefuseUnknownMember  RefuseCode = 3
	RefuseIdentity       RefuseCode = 4
	RefuseWrongMember    RefuseCode = 5
	RefuseUnavailable    RefuseCode = 6
	RefuseBadHello       RefuseCode = 7
)

// Refuse is the acceptor's negative answer.
type Refuse struct {
	Code   RefuseCode
	Mode   Mode   // the acceptor's ssl_mode for the channel (0 if unknown)
	Reason string // human-readable, logged by the dialer
}

// AppendHello appends the encoded HELLO frame to dst.
func AppendHello(dst []byte, h Hello) []byte { return dst }

// AppendAccept appends an ACCEPT frame to dst.
func AppendAccept(dst []byte) []byte { return dst }

// AppendRefuse appends a REFUSE frame to dst.
func AppendRefuse(dst []byte, r Refuse) []byte { return dst }

// ReadFrame reads one whole frame from r.
func ReadFrame(r io.Reader) (FrameType, []byte, error) { return 0, nil, errors.New("todo") }

// ParseHello decodes a HELLO body.
func ParseHello(body []byte) (Hello, error) { return Hello{}, errors.New("todo") }

// ParseRefuse decodes a REFUSE body.
func ParseRefuse(body []byte) (Refuse, error) { return Refuse{}, errors.New("todo") }
