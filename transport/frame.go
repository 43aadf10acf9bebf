package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"unicode/utf8"
)

// The link frames: see WIRE.md beside this file for the specification.

// FrameType tells frames apart.
type FrameType uint8

// Frame types.
const (
	FrameHello  FrameType = 1 // dialer → acceptor, first frame of a link
	FrameAccept FrameType = 2 // acceptor → dialer: the link is up
	FrameRefuse FrameType = 3 // acceptor → dialer: the link is refused, then closed
	// FrameProbe is a HELLO that asks only whether the link would be
	// accepted: the acceptor checks it as a HELLO, answers ACCEPT or REFUSE
	// and closes, without connecting its member.
	FrameProbe FrameType = 4
)

// String returns the frame type's name as WIRE.md spells it.
func (t FrameType) String() string {
	switch t {
	case FrameHello:
		return "HELLO"
	case FrameAccept:
		return "ACCEPT"
	case FrameRefuse:
		return "REFUSE"
	case FrameProbe:
		return "PROBE"
	}
	return fmt.Sprintf("FrameType(%d)", uint8(t))
}

// FrameHeaderLen is the size of a frame header: magic "GW", version, type,
// 16-bit big-endian body length.
const FrameHeaderLen = 6

// MaxFrameBody bounds a frame body.
const MaxFrameBody = 1024

// ErrFrameTooLarge is a frame header announcing a body over MaxFrameBody.
var ErrFrameTooLarge = errors.New("body too large")

// FrameVersion is the frame format version this package speaks.
const FrameVersion = 1

// MaxNameLen bounds the channel and member names carried in HELLO.
const MaxNameLen = 255

// Errors that ReadFrame wraps, for callers that branch on them.
var (
	// ErrNotFrame means the bytes read do not start with the "GW" magic.
	ErrNotFrame = errors.New("not a groupwire frame")
	// ErrFrameVersion means the peer speaks another frame version.
	ErrFrameVersion = errors.New("unsupported groupwire frame version")
)

// Hello is the first frame of a link, sent by the dialer.
type Hello struct {
	Mode    Mode   // the dialer's ssl_mode for this channel
	Channel string // channel name
	From    string // the dialing member
	To      string // the member the dialer means to reach
	// Probe marks a PROBE: check the link, do not connect the member.
	Probe bool
}

// Validate reports a Hello that AppendHello cannot encode faithfully or
// that ParseHello would reject, naming the field.
func (h Hello) Validate() error {
	if !h.Mode.Valid() {
		return fmt.Errorf("HELLO: invalid ssl_mode %d", uint8(h.Mode))
	}
	for _, f := range [...]struct{ field, name string }{{"channel", h.Channel}, {"from", h.From}, {"to", h.To}} {
		if err := CheckFrameName(f.name); err != nil {
			return fmt.Errorf("HELLO %s name: %w", f.field, err)
		}
	}
	return nil
}

// CheckFrameName reports whether s can travel in HELLO as a channel or
// member name: 1 to MaxNameLen bytes of printable ASCII (0x21–0x7e).
func CheckFrameName(s string) error {
	if s == "" {
		return errors.New("empty name")
	}
	if len(s) > MaxNameLen {
		return fmt.Errorf("name is %d bytes long (max %d)", len(s), MaxNameLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("name %q has byte 0x%02x at offset %d (want printable ASCII without spaces)", s, c, i)
		}
	}
	return nil
}

// RefuseCode says why a link was refused.
type RefuseCode uint8

// Refusal codes.
const (
	RefuseModeMismatch   RefuseCode = 1 // the two ends run different ssl_modes
	RefuseUnknownChannel RefuseCode = 2 // the acceptor has no such channel
	RefuseUnknownMember  RefuseCode = 3 // HELLO's From is not a member of the group
	RefuseIdentity       RefuseCode = 4 // the client certificate does not name From
	RefuseWrongMember    RefuseCode = 5 // HELLO's To is not the accepting member
	RefuseUnavailable    RefuseCode = 6 // the member's service cannot be reached, or draining
	RefuseBadHello       RefuseCode = 7 // HELLO was malformed or not the first frame
)

var refuseNames = [...]string{
	RefuseModeMismatch:   "mode mismatch",
	RefuseUnknownChannel: "unknown channel",
	RefuseUnknownMember:  "unknown member",
	RefuseIdentity:       "identity mismatch",
	RefuseWrongMember:    "wrong member",
	RefuseUnavailable:    "unavailable",
	RefuseBadHello:       "bad hello",
}

// String names the code, such as "mode mismatch".
func (c RefuseCode) String() string {
	if c >= RefuseModeMismatch && int(c) < len(refuseNames) {
		return refuseNames[c]
	}
	return fmt.Sprintf("refuse code %d", uint8(c))
}

// Refuse is the acceptor's negative answer. It is an error, so a dialer
// can return it as is; errors.As finds it.
type Refuse struct {
	Code   RefuseCode
	Mode   Mode   // the acceptor's ssl_mode for the channel (0 if unknown)
	Reason string // human-readable, logged by the dialer
}

// Error reads like "refused by peer (mode mismatch, peer runs DISABLED):
// <reason>".
func (r Refuse) Error() string {
	var b strings.Builder
	b.WriteString("refused by peer (")
	b.WriteString(r.Code.String())
	if r.Mode != 0 {
		b.WriteString(", peer runs ")
		b.WriteString(r.Mode.String())
	}
	b.WriteString(")")
	if r.Reason != "" {
		b.WriteString(": ")
		b.WriteString(r.Reason)
	}
	return b.String()
}

// appendHeader appends a frame header whose length is patched by
// finishFrame.
func appendHeader(dst []byte, t FrameType) []byte {
	return append(dst, 'G', 'W', FrameVersion, byte(t), 0, 0)
}

// finishFrame writes the body length of the frame that starts at start.
func finishFrame(frame []byte, start int) []byte {
	binary.BigEndian.PutUint16(frame[start+4:], uint16(len(frame)-start-FrameHeaderLen))
	return frame
}

// AppendHello appends the encoded HELLO frame to dst. It never fails and
// does not allocate when dst has room: a name longer than MaxNameLen is cut
// to MaxNameLen bytes, and other invalid values are sent as they are, for
// the acceptor to refuse with RefuseBadHello. Check h with Validate first.
func AppendHello(dst []byte, h Hello) []byte {
	start := len(dst)
	typ := FrameHello
	if h.Probe {
		typ = FrameProbe
	}
	dst = appendHeader(dst, typ)
	dst = append(dst, byte(h.Mode))
	dst = appendName(dst, h.Channel)
	dst = appendName(dst, h.From)
	dst = appendName(dst, h.To)
	return finishFrame(dst, start)
}

func appendName(dst []byte, s string) []byte {
	if len(s) > MaxNameLen {
		s = s[:MaxNameLen]
	}
	dst = append(dst, byte(len(s)))
	return append(dst, s...)
}

// AppendAccept appends an ACCEPT frame to dst.
func AppendAccept(dst []byte) []byte {
	return appendHeader(dst, FrameAccept)
}

// AppendRefuse appends a REFUSE frame to dst. Invalid UTF-8 in the reason
// is replaced, and a reason too long for MaxFrameBody is cut at a rune
// boundary.
func AppendRefuse(dst []byte, r Refuse) []byte {
	start := len(dst)
	dst = appendHeader(dst, FrameRefuse)
	dst = append(dst, byte(r.Code), byte(r.Mode))
	reason := strings.ToValidUTF8(r.Reason, "\uFFFD")
	if room := MaxFrameBody - 2; len(reason) > room {
		cut := room
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	dst = append(dst, reason...)
	return finishFrame(dst, start)
}

// ReadFrame reads one whole frame from r: exactly its header and body, so
// the bytes that follow (a pipelined byte stream) stay unread in r. It
// checks the magic, version, type and length, and says what arrived
// instead when the bytes are not a frame. After a failed TLS handshake,
// read a plaintext answer through ReplayConn.Replay: crypto/tls reads
// ahead, so the frame is in its buffer, not on the socket.
func ReadFrame(r io.Reader) (FrameType, []byte, error) {
	var hdr [FrameHeaderLen]byte
	n, err := io.ReadFull(r, hdr[:])
	if err != nil {
		if herr := checkHeader(hdr[:n]); herr != nil {
			return 0, nil, herr
		}
		if n == 0 {
			return 0, nil, fmt.Errorf("read frame header: %w", err)
		}
		return 0, nil, fmt.Errorf("read frame header: got %d of %d bytes: %w", n, FrameHeaderLen, unexpectedEOF(err))
	}
	if err := checkHeader(hdr[:]); err != nil {
		return 0, nil, err
	}
	typ := FrameType(hdr[3])
	size := int(binary.BigEndian.Uint16(hdr[4:]))
	switch {
	case size > MaxFrameBody:
		return 0, nil, fmt.Errorf("read %s frame: %w: %d bytes (max %d)", typ, ErrFrameTooLarge, size, MaxFrameBody)
	case typ == FrameAccept && size != 0:
		return 0, nil, fmt.Errorf("read ACCEPT frame: body is %d bytes, want none", size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, fmt.Errorf("read %s frame body (%d bytes): %w", typ, size, unexpectedEOF(err))
	}
	return typ, body, nil
}

// checkHeader validates as much of a header as b holds.
func checkHeader(b []byte) error {
	if len(b) >= 1 && b[0] != 'G' || len(b) >= 2 && b[1] != 'W' {
		hint := ""
		if b[0] == 0x16 {
			hint = " (looks like TLS: the peer started a TLS handshake)"
		}
		return fmt.Errorf("%w: first bytes % x%s", ErrNotFrame, b, hint)
	}
	if len(b) >= 3 && b[2] != FrameVersion {
		return fmt.Errorf("%w %d (this side speaks %d)", ErrFrameVersion, b[2], FrameVersion)
	}
	if len(b) >= 4 && (b[3] < byte(FrameHello) || b[3] > byte(FrameProbe)) {
		return fmt.Errorf("read frame: unknown frame type %d", b[3])
	}
	return nil
}

// unexpectedEOF turns io.EOF in the middle of a frame into
// io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ParseHello decodes a HELLO body: a mode byte, then channel, from and to,
// each a length byte and that many bytes of printable ASCII.
func ParseHello(body []byte) (Hello, error) {
	if len(body) < 1 {
		return Hello{}, errors.New("HELLO: empty body")
	}
	h := Hello{Mode: Mode(body[0])}
	if !h.Mode.Valid() {
		return Hello{}, fmt.Errorf("HELLO: unknown ssl_mode byte %d", body[0])
	}
	rest := body[1:]
	for _, f := range [...]struct {
		field string
		dst   *string
	}{{"channel", &h.Channel}, {"from", &h.From}, {"to", &h.To}} {
		if len(rest) < 1 {
			return Hello{}, fmt.Errorf("HELLO: body ends before the %s name", f.field)
		}
		n := int(rest[0])
		if len(rest)-1 < n {
			return Hello{}, fmt.Errorf("HELLO: %s name is %d bytes but only %d remain", f.field, n, len(rest)-1)
		}
		name := rest[1 : 1+n]
		if err := checkNameBytes(name); err != nil {
			return Hello{}, fmt.Errorf("HELLO %s name: %w", f.field, err)
		}
		*f.dst = string(name)
		rest = rest[1+n:]
	}
	if len(rest) > 0 {
		return Hello{}, fmt.Errorf("HELLO: %d bytes after the to name", len(rest))
	}
	return h, nil
}

// checkNameBytes is CheckFrameName for a name still in the frame body; it
// does not allocate unless the name is bad.
func checkNameBytes(b []byte) error {
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return CheckFrameName(string(b))
		}
	}
	if len(b) == 0 {
		return CheckFrameName("")
	}
	return nil
}

// ParseRefuse decodes a REFUSE body: code byte, mode byte (0 when the
// acceptor has no mode for the channel), then the reason. Codes this side
// does not know are kept; invalid UTF-8 in the reason is replaced.
func ParseRefuse(body []byte) (Refuse, error) {
	if len(body) < 2 {
		return Refuse{}, fmt.Errorf("REFUSE: body is %d bytes, want at least 2", len(body))
	}
	r := Refuse{Code: RefuseCode(body[0]), Mode: Mode(body[1])}
	if r.Code == 0 {
		return Refuse{}, errors.New("REFUSE: code 0 is not a refusal code")
	}
	if r.Mode != 0 && !r.Mode.Valid() {
		return Refuse{}, fmt.Errorf("REFUSE: unknown ssl_mode byte %d", body[1])
	}
	r.Reason = strings.ToValidUTF8(string(body[2:]), "\uFFFD")
	return r, nil
}

// ReplayConn is the net.Conn a dialer hands to tls.Client so that a
// plaintext REFUSE answering its ClientHello can be read in full. crypto/tls
// reads ahead into its own buffer while it looks for a record header, so
// after a tls.RecordHeaderError the frame is gone from the socket;
// ReplayConn keeps a copy of the first FrameHeaderLen+MaxFrameBody bytes
// read through it. It is not safe for use by several goroutines at once.
type ReplayConn struct {
	net.Conn
	seen []byte
	done bool
}

// NewReplayConn wraps c.
func NewReplayConn(c net.Conn) *ReplayConn { return &ReplayConn{Conn: c} }

// Read reads from the connection, keeping a copy of the first bytes.
func (c *ReplayConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if room := FrameHeaderLen + MaxFrameBody - len(c.seen); !c.done && room > 0 {
		c.seen = append(c.seen, p[:min(n, room)]...)
	}
	return n, err
}

// Replay returns a reader that yields the bytes read through c so far and
// then reads on from the connection: pass it to ReadFrame.
func (c *ReplayConn) Replay() io.Reader {
	return io.MultiReader(bytes.NewReader(slices.Clone(c.seen)), c.Conn)
}

// Forget stops keeping bytes and frees those kept, once the handshake has
// succeeded.
func (c *ReplayConn) Forget() { c.seen, c.done = nil, true }
