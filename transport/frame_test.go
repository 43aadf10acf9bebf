package transport

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

var testHello = Hello{Mode: VerifyIdentity, Channel: "group", From: "mysql-1", To: "mysql-2"}

// The wire bytes are pinned: changing them is a protocol change (WIRE.md).
const (
	testHelloWire  = "GW\x01\x01\x00\x17\x04\x05group\x07mysql-1\x07mysql-2"
	testAcceptWire = "GW\x01\x02\x00\x00"
	testRefuseWire = "GW\x01\x03\x00\x0d\x01\x01no TLS here"
	testProbeWire  = "GW\x01\x04\x00\x17\x04\x05group\x07mysql-1\x07mysql-2"
)

var testRefuse = Refuse{Code: RefuseModeMismatch, Mode: Disabled, Reason: "no TLS here"}

func TestFrameWireFormat(t *testing.T) {
	for _, tt := range []struct {
		name      string
		got, want string
	}{
		{"HELLO", string(AppendHello(nil, testHello)), testHelloWire},
		{"ACCEPT", string(AppendAccept(nil)), testAcceptWire},
		{"PROBE", string(AppendHello(nil, Hello{Mode: testHello.Mode, Channel: testHello.Channel, From: testHello.From, To: testHello.To, Probe: true})), testProbeWire},
		{"REFUSE", string(AppendRefuse(nil, testRefuse)), testRefuseWire},
		{"appends", string(AppendAccept([]byte("x"))), "x" + testAcceptWire},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: encoded %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestHelloRoundTrip(t *testing.T) {
	long := strings.Repeat("m", MaxNameLen)
	for _, h := range []Hello{
		testHello,
		{Mode: Disabled, Channel: "c", From: "a", To: "b"},
		{Mode: Required, Channel: long, From: long, To: long},
		{Mode: VerifyCA, Channel: "recovery", From: "db-1.example.com:3306", To: "~!@#$%^&*()_+{}|"},
	} {
		if err := h.Validate(); err != nil {
			t.Fatalf("Validate(%+v): %v", h, err)
		}
		typ, body, err := ReadFrame(bytes.NewReader(AppendHello(nil, h)))
		if err != nil || typ != FrameHello {
			t.Fatalf("ReadFrame: %v, %v", typ, err)
		}
		got, err := ParseHello(body)
		if err != nil || got != h {
			t.Errorf("round trip of %+v gave %+v, %v", h, got, err)
		}
	}
}

func TestAppendHelloCutsLongNames(t *testing.T) {
	h := Hello{Mode: Required, Channel: strings.Repeat("c", 300), From: "a", To: "b"}
	if err := h.Validate(); err == nil || !strings.Contains(err.Error(), "HELLO channel name: name is 300 bytes long (max 255)") {
		t.Errorf("Validate: %v", err)
	}
	_, body, err := ReadFrame(bytes.NewReader(AppendHello(nil, h)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseHello(body)
	if err != nil || got.Channel != h.Channel[:MaxNameLen] || got.From != "a" || got.To != "b" {
		t.Errorf("got %+v, %v; want the channel cut to %d bytes", got, err, MaxNameLen)
	}
}

func TestHelloValidate(t *testing.T) {
	for _, tt := range []struct {
		h    Hello
		want string
	}{
		{Hello{Mode: 0, Channel: "c", From: "a", To: "b"}, "HELLO: invalid ssl_mode 0"},
		{Hello{Mode: Required, Channel: "", From: "a", To: "b"}, "HELLO channel name: empty name"},
		{Hello{Mode: Required, Channel: "c", From: "my sql", To: "b"}, `HELLO from name: name "my sql" has byte 0x20 at offset 2`},
		{Hello{Mode: Required, Channel: "c", From: "a", To: "bé"}, `HELLO to name: name "bé" has byte 0xc3 at offset 1`},
	} {
		if err := tt.h.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tt.h, err, tt.want)
		}
	}
}

func TestRefuseRoundTrip(t *testing.T) {
	long := strings.Repeat("é", MaxFrameBody) // 2 bytes a rune: must be cut at a rune boundary
	for _, tt := range []struct {
		in, want Refuse
	}{
		{testRefuse, testRefuse},
		{Refuse{Code: RefuseUnknownChannel}, Refuse{Code: RefuseUnknownChannel}},
		{Refuse{Code: 42, Mode: VerifyIdentity, Reason: "newer peer"}, Refuse{Code: 42, Mode: VerifyIdentity, Reason: "newer peer"}},
		{Refuse{Code: RefuseBadHello, Reason: "bad \xff byte"}, Refuse{Code: RefuseBadHello, Reason: "bad \uFFFD byte"}},
		{Refuse{Code: RefuseUnavailable, Mode: Required, Reason: long}, Refuse{Code: RefuseUnavailable, Mode: Required, Reason: long[:MaxFrameBody-2]}},
		{Refuse{Code: RefuseUnavailable, Reason: "x" + long}, Refuse{Code: RefuseUnavailable, Reason: ("x" + long)[:MaxFrameBody-3]}},
	} {
		frame := AppendRefuse(nil, tt.in)
		typ, body, err := ReadFrame(bytes.NewReader(frame))
		if err != nil || typ != FrameRefuse {
			t.Fatalf("ReadFrame: %v, %v", typ, err)
		}
		got, err := ParseRefuse(body)
		if err != nil || got != tt.want {
			t.Errorf("round trip of %.40q gave %.40q, %v; want %.40q", tt.in.Reason, got.Reason, err, tt.want.Reason)
		}
		if !utf8.ValidString(got.Reason) || len(body) > MaxFrameBody {
			t.Errorf("reason not valid UTF-8 or body %d bytes", len(body))
		}
	}
}

func TestRefuseError(t *testing.T) {
	for _, tt := range []struct {
		r    Refuse
		want string
	}{
		{testRefuse, "refused by peer (mode mismatch, peer runs DISABLED): no TLS here"},
		{Refuse{Code: RefuseUnknownChannel, Reason: `unknown channel "x"`}, `refused by peer (unknown channel): unknown channel "x"`},
		{Refuse{Code: RefuseIdentity, Mode: VerifyIdentity}, "refused by peer (identity mismatch, peer runs VERIFY_IDENTITY)"},
		{Refuse{Code: 42}, "refused by peer (refuse code 42)"},
	} {
		if got := tt.r.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	var err error = testRefuse
	var r Refuse
	if !errors.As(errors.Join(errors.New("dial mysql-2"), err), &r) || r != testRefuse {
		t.Errorf("errors.As did not find the Refuse")
	}
	names := map[string]bool{}
	for c := RefuseModeMismatch; c <= RefuseBadHello; c++ {
		if n := c.String(); strings.HasPrefix(n, "refuse code") || names[n] {
			t.Errorf("code %d has no unique name: %q", c, n)
		}
		names[c.String()] = true
	}
}

// readFrameErrorCases are malformed streams; they also seed FuzzReadFrame.
var readFrameErrorCases = []struct {
	name, in string
	is       error
	want     string
}{
	{"empty", "", io.EOF, "read frame header: EOF"},
	{"short header", "GW\x01", io.ErrUnexpectedEOF, "read frame header: got 3 of 6 bytes"},
	{"TLS ClientHello", "\x16\x03\x01\x00\xf4\x01\x00\x00\xf0\x03\x03", ErrNotFrame, "not a groupwire frame: first bytes 16 03 01 00 f4 01 (looks like TLS"},
	{"short TLS", "\x16\x03", ErrNotFrame, "first bytes 16 03 (looks like TLS"},
	{"HTTP", "GET / HTTP/1.1\r\n", ErrNotFrame, "not a groupwire frame: first bytes 47 45 54 20 2f 20"},
	{"version 2", "GW\x02\x01\x00\x00", ErrFrameVersion, "unsupported groupwire frame version 2 (this side speaks 1)"},
	{"unknown type", "GW\x01\x09\x00\x00", nil, "unknown frame type 9"},
	{"type 0", "GW\x01\x00\x00\x00", nil, "unknown frame type 0"},
	{"too large", "GW\x01\x01\x04\x01", nil, "read HELLO frame: body too large: 1025 bytes (max 1024)"},
	{"ACCEPT with body", "GW\x01\x02\x00\x03abc", nil, "read ACCEPT frame: body is 3 bytes, want none"},
	{"short body", "GW\x01\x01\x00\x0a\x01abc", io.ErrUnexpectedEOF, "read HELLO frame body (10 bytes)"},
	{"no body", "GW\x01\x03\x00\x02", io.ErrUnexpectedEOF, "read REFUSE frame body (2 bytes)"},
}

func TestReadFrameErrors(t *testing.T) {
	for _, tt := range readFrameErrorCases {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ReadFrame(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadFrame(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
}

// exactReader fails the test if asked for more than it may give.
type exactReader struct {
	t     *testing.T
	data  []byte
	limit int // bytes that may be read
}

func (r *exactReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	r.limit -= n
	if r.limit < 0 {
		r.t.Errorf("read %d bytes past the frame", -r.limit)
	}
	return n, nil
}

func TestReadFrameReadsNoFurther(t *testing.T) {
	frame := AppendHello(nil, testHello)
	stream := append(append([]byte{}, frame...), "member bytes"...)
	r := bytes.NewReader(stream)
	if _, _, err := ReadFrame(r); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "member bytes" {
		t.Errorf("after the frame %q is left, want %q", rest, "member bytes")
	}
	// A reader that hands out everything it has in one Read still gives
	// no more than was asked for.
	er := &exactReader{t: t, data: stream, limit: len(frame)}
	if _, _, err := ReadFrame(er); err != nil {
		t.Fatal(err)
	}
	if string(er.data) != "member bytes" {
		t.Errorf("ReadFrame consumed %q of what follows", "member bytes"[:12-len(er.data)])
	}
}

// parseHelloErrorCases are malformed HELLO bodies; they also seed FuzzParseHello.
var parseHelloErrorCases = []struct {
	name, body, want string
}{
	{"empty", "", "HELLO: empty body"},
	{"mode 0", "\x00\x01c\x01a\x01b", "HELLO: unknown ssl_mode byte 0"},
	{"mode 5", "\x05\x01c\x01a\x01b", "HELLO: unknown ssl_mode byte 5"},
	{"no channel", "\x02", "HELLO: body ends before the channel name"},
	{"channel too short", "\x02\x05ab", "HELLO: channel name is 5 bytes but only 2 remain"},
	{"empty channel", "\x02\x00\x01a\x01b", "HELLO channel name: empty name"},
	{"no to", "\x02\x01c\x01a", "HELLO: body ends before the to name"},
	{"empty from", "\x02\x01c\x00\x01b", "HELLO from name: empty name"},
	{"control byte", "\x02\x01c\x02a\n\x01b", `HELLO from name: name "a\n" has byte 0x0a at offset 1`},
	{"space", "\x02\x01c\x01a\x03b b", `HELLO to name: name "b b" has byte 0x20 at offset 1`},
	{"high byte", "\x02\x02\xc3\xa9\x01a\x01b", "HELLO channel name: name \"é\" has byte 0xc3 at offset 0"},
	{"trailing", "\x02\x01c\x01a\x01bxyz", "HELLO: 3 bytes after the to name"},
}

func TestParseHelloErrors(t *testing.T) {
	for _, tt := range parseHelloErrorCases {
		if _, err := ParseHello([]byte(tt.body)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: ParseHello(%q) error = %v, want it to contain %q", tt.name, tt.body, err, tt.want)
		}
	}
}

func TestParseRefuseErrors(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{"", "REFUSE: body is 0 bytes, want at least 2"},
		{"\x01", "REFUSE: body is 1 bytes, want at least 2"},
		{"\x00\x01why", "REFUSE: code 0 is not a refusal code"},
		{"\x01\x07why", "REFUSE: unknown ssl_mode byte 7"},
	} {
		if _, err := ParseRefuse([]byte(tt.body)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRefuse(%q) error = %v, want it to contain %q", tt.body, err, tt.want)
		}
	}
}

func TestFrameTypeString(t *testing.T) {
	for typ, want := range map[FrameType]string{FrameHello: "HELLO", FrameAccept: "ACCEPT", FrameRefuse: "REFUSE", 9: "FrameType(9)"} {
		if got := typ.String(); got != want {
			t.Errorf("FrameType(%d).String() = %q, want %q", uint8(typ), got, want)
		}
	}
}

func TestAppendHelloAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = AppendHello(buf[:0], testHello) }); n != 0 {
		t.Errorf("AppendHello into a reused buffer allocates %v times", n)
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, s := range []string{testHelloWire, testAcceptWire, testRefuseWire, testProbeWire, testHelloWire + "trailing"} {
		f.Add([]byte(s))
	}
	for _, tt := range readFrameErrorCases {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		typ, body, err := ReadFrame(r)
		if err != nil {
			return
		}
		if used := len(data) - r.Len(); used != FrameHeaderLen+len(body) || len(body) > MaxFrameBody {
			t.Fatalf("read %d bytes for a %d-byte body", used, len(body))
		}
		frame := data[:FrameHeaderLen+len(body)]
		switch typ {
		case FrameHello, FrameProbe:
			if h, err := ParseHello(body); err == nil {
				h.Probe = typ == FrameProbe
				if got := AppendHello(nil, h); !bytes.Equal(got, frame) {
					t.Fatalf("HELLO re-encodes as %q, read %q", got, frame)
				}
			}
		case FrameAccept:
			if !bytes.Equal(AppendAccept(nil), frame) {
				t.Fatalf("ACCEPT %q", frame)
			}
		case FrameRefuse:
			if rf, err := ParseRefuse(body); err == nil && utf8.Valid(body[2:]) {
				if got := AppendRefuse(nil, rf); !bytes.Equal(got, frame) {
					t.Fatalf("REFUSE re-encodes as %q, read %q", got, frame)
				}
			}
		default:
			t.Fatalf("ReadFrame accepted frame type %d", typ)
		}
	})
}

func FuzzParseHello(f *testing.F) {
	f.Add([]byte(testHelloWire[FrameHeaderLen:]))
	for _, tt := range parseHelloErrorCases {
		f.Add([]byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := ParseHello(body)
		if err != nil {
			return
		}
		if err := h.Validate(); err != nil {
			t.Fatalf("ParseHello accepted %+v, which Validate rejects: %v", h, err)
		}
		if got := AppendHello(nil, h)[FrameHeaderLen:]; !bytes.Equal(got, body) {
			t.Fatalf("re-encodes as %q, parsed %q", got, body)
		}
	})
}

func BenchmarkAppendHello(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = AppendHello(buf[:0], testHello)
	}
}

func BenchmarkReadFrame(b *testing.B) {
	b.ReportAllocs()
	frame := AppendHello(nil, testHello)
	r := bytes.NewReader(frame)
	for b.Loop() {
		r.Reset(frame)
		if _, _, err := ReadFrame(r); err != nil {
			b.Fatal(err)
		}
	}
}
