package tlsopt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

//go:generate go run ./internal/gencipher -o cipher_table.go

// opensslSuite is one row of the generated OpenSSL cipher table.
type opensslSuite struct {
	id               uint16
	name             string // OpenSSL's name, e.g. ECDHE-RSA-AES128-GCM-SHA256
	std              string // IANA name, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
	proto            string // the oldest protocol it runs on: SSLv3, TLSv1, TLSv1.2, TLSv1.3
	kx, au, enc, mac string // OpenSSL's Kx=, Au=, Enc=, Mac= columns
	bits             int    // cipher key size, for @STRENGTH
}

// needsSecret reports a PSK or SRP suite, which authenticates with a shared
// secret instead of a certificate: an OpenSSL server without PSK/SRP
// callbacks (MySQL) never uses them, so they are not reported as dropped.
func (s *opensslSuite) needsSecret() bool {
	return strings.Contains(s.kx, "PSK") || strings.Contains(s.kx, "SRP")
}

// opensslAlias is one OpenSSL cipher-string alias and the suites it selects.
type opensslAlias struct {
	name string
	ids  []uint16
}

// CipherSelection is what an ssl_cipher string selects, split by what Go
// can do with each suite. Names are OpenSSL's.
type CipherSelection struct {
	// Suites are the TLS 1.0–1.2 suites to configure, in OpenSSL's order.
	Suites []uint16
	// Dropped are selected suites that Go does not implement (DHE, CCM,
	// ARIA, CAMELLIA, CBC with SHA384, PSK...).
	Dropped []string
	// Excluded are insecure suites Go implements that only an alias
	// selected; they are left out unless named explicitly.
	Excluded []string
	// Insecure are insecure suites included because the string names them.
	Insecure []string
}

// Warnings returns what is worth a warning about the selection, worded to
// follow the ssl_cipher key's path: suites Go cannot do (left out) and
// insecure suites let in because the string names them. Insecure suites
// that only an alias selected are left out silently, as OpenSSL's HIGH
// leaves out weak ones. It returns nil when there is nothing to say.
func (c CipherSelection) Warnings() []string {
	var w []string
	if len(c.Dropped) > 0 {
		w = append(w, "Go cannot do "+strings.Join(c.Dropped, ", ")+"; left out")
	}
	if len(c.Insecure) > 0 {
		w = append(w, "enables insecure suites because it names them: "+strings.Join(c.Insecure, ", "))
	}
	return w
}

// ResolveCipherList evaluates an OpenSSL cipher string (ssl_cipher) over
// the suites OpenSSL knows, as OpenSSL would, then keeps those Go can do.
// It supports explicit OpenSSL names, the separators ':' ',' ';' and space,
// the prefixes '!' (delete for good), '-' (delete) and '+' (move to the
// end), aliases joined with '+' (ECDHE+AESGCM), DEFAULT as the first
// element, @STRENGTH and @SECLEVEL=n (ignored: it does not change what Go
// does). Names and aliases match case-insensitively. Insecure suites are
// included only when named explicitly. An unknown name, or a string that
// leaves nothing Go can use, is an error. An empty string gives an empty
// selection, meaning Go's defaults.
func ResolveCipherList(s string) (CipherSelection, error) {
	if strings.TrimSpace(s) == "" {
		return CipherSelection{}, nil
	}
	elems := strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(":,; ", r) })
	if len(elems) == 0 {
		return CipherSelection{}, fmt.Errorf("ssl_cipher %q names no cipher", s)
	}
	if strings.EqualFold(elems[0], "DEFAULT") {
		elems = append([]string{"ALL", "!COMPLEMENTOFDEFAULT", "!eNULL"}, elems[1:]...)
	}
	ev := newCipherEval()
	for _, e := range elems {
		if err := ev.apply(e); err != nil {
			return CipherSelection{}, fmt.Errorf("ssl_cipher %q: %w", s, err)
		}
	}
	sel := ev.selection()
	if len(sel.Suites) == 0 {
		return sel, fmt.Errorf("ssl_cipher %q leaves no cipher suite Go can use%s", s, emptyDetail(sel))
	}
	return sel, nil
}

func emptyDetail(sel CipherSelection) string {
	var b strings.Builder
	if len(sel.Dropped) > 0 {
		b.WriteString("; Go does not implement " + strings.Join(sel.Dropped, ", "))
	}
	if len(sel.Excluded) > 0 {
		b.WriteString("; insecure, used only when named: " + strings.Join(sel.Excluded, ", "))
	}
	secure, insecure := goSuiteNames()
	b.WriteString("; Go supports " + strings.Join(secure, ", "))
	b.WriteString(" and, when named explicitly, the insecure " + strings.Join(insecure, ", "))
	return b.String()
}

// cipherEval runs OpenSSL's cipher-list algorithm (ssl_cipher_apply_rule):
// every suite sits in one ordered list, active or not; adding appends
// matching inactive suites to the end, '+' moves matching active ones to the
// end, '-' moves them to the front and deactivates them, '!' removes them.
type cipherEval struct {
	order    []int // indices into opensslSuites; killed ones are removed
	active   map[int]bool
	explicit map[int]bool // named on their own in an adding element
}

func newCipherEval() *cipherEval {
	ev := &cipherEval{active: map[int]bool{}, explicit: map[int]bool{}}
	for i := range opensslSuites {
		if opensslSuites[i].proto != "TLSv1.3" {
			ev.order = append(ev.order, i)
		}
	}
	return ev
}

// apply evaluates one element of the cipher string.
func (ev *cipherEval) apply(elem string) error {
	if strings.HasPrefix(elem, "@") {
		return ev.command(elem)
	}
	op := byte(0)
	if strings.ContainsRune("!-+", rune(elem[0])) {
		op, elem = elem[0], elem[1:]
	}
	if elem == "" {
		return fmt.Errorf("%q names nothing", string(op))
	}
	match, named, err := matchElement(elem)
	if err != nil {
		return err
	}
	var moved, rest []int
	for _, i := range ev.order {
		if !match[opensslSuites[i].id] {
			rest = append(rest, i)
			continue
		}
		if op == 0 && named {
			ev.explicit[i] = true // even when already active
		}
		switch {
		case op == '!':
		case op == 0 && !ev.active[i], op == '+' && ev.active[i], op == '-' && ev.active[i]:
			moved = append(moved, i)
		default:
			rest = append(rest, i)
		}
	}
	switch op {
	case 0:
		for _, i := range moved {
			ev.active[i] = true
		}
		ev.order = append(rest, moved...)
	case '+':
		ev.order = append(rest, moved...)
	case '-':
		for _, i := range moved {
			ev.active[i] = false
		}
		ev.order = append(moved, rest...)
	case '!':
		ev.order = rest
	}
	return nil
}

// command handles @STRENGTH and @SECLEVEL=n.
func (ev *cipherEval) command(elem string) error {
	switch {
	case strings.EqualFold(elem, "@STRENGTH"):
		// As OpenSSL: active suites move to the end, strongest first;
		// inactive ones keep their order.
		var inactive, active []int
		for _, i := range ev.order {
			if ev.active[i] {
				active = append(active, i)
			} else {
				inactive = append(inactive, i)
			}
		}
		slices.SortStableFunc(active, func(a, b int) int { return opensslSuites[b].bits - opensslSuites[a].bits })
		ev.order = append(inactive, active...)
		return nil
	case len(elem) == len("@SECLEVEL=n") && strings.EqualFold(elem[:10], "@SECLEVEL=") && elem[10] >= '0' && elem[10] <= '5':
		return nil
	}
	return fmt.Errorf("unknown command %q (want @STRENGTH or @SECLEVEL=0..5)", elem)
}

// matchElement returns the IDs an element such as "ECDHE+AESGCM" selects,
// and whether it is a single explicit suite name.
func matchElement(elem string) (map[uint16]bool, bool, error) {
	parts := strings.Split(elem, "+")
	var match map[uint16]bool
	named := false
	for _, p := range parts {
		ids, isName, err := lookupCipher(p)
		if err != nil {
			return nil, false, err
		}
		named = isName && len(parts) == 1
		next := make(map[uint16]bool, len(ids))
		for _, id := range ids {
			if match == nil || match[id] {
				next[id] = true
			}
		}
		match = next
	}
	return match, named, nil
}

// lookupCipher resolves one suite name or alias.
func lookupCipher(name string) (ids []uint16, isName bool, err error) {
	switch {
	case name == "":
		return nil, false, fmt.Errorf("empty name in a '+' combination")
	case strings.EqualFold(name, "DEFAULT"):
		return nil, false, fmt.Errorf("DEFAULT must be the first element (as in OpenSSL)")
	}
	for _, a := range opensslAliases {
		if strings.EqualFold(a.name, name) {
			return a.ids, false, nil
		}
	}
	for _, s := range opensslSuites {
		switch {
		case strings.EqualFold(s.name, name) && s.proto == "TLSv1.3":
			return nil, false, fmt.Errorf("%s is a TLS 1.3 suite: list it in tls_ciphersuites, not ssl_cipher", s.name)
		case strings.EqualFold(s.name, name):
			return []uint16{s.id}, true, nil
		case strings.EqualFold(s.std, name):
			return nil, false, fmt.Errorf("%s is an IANA name: ssl_cipher takes OpenSSL names, here %s", name, s.name)
		}
	}
	return nil, false, fmt.Errorf("unknown cipher or alias %q", name)
}

// selection splits the active suites by what Go can do.
func (ev *cipherEval) selection() CipherSelection {
	goSuites := goCipherSuites()
	var sel CipherSelection
	for _, i := range ev.order {
		if !ev.active[i] {
			continue
		}
		s := &opensslSuites[i]
		if s.needsSecret() && !ev.explicit[i] {
			continue // as openssl ciphers -s: unusable without a PSK or SRP callback
		}
		insecure, ok := goSuites[s.id]
		switch {
		case !ok:
			sel.Dropped = append(sel.Dropped, s.name)
		case !insecure:
			sel.Suites = append(sel.Suites, s.id)
		case ev.explicit[i]:
			sel.Suites = append(sel.Suites, s.id)
			sel.Insecure = append(sel.Insecure, s.name)
		default:
			sel.Excluded = append(sel.Excluded, s.name)
		}
	}
	return sel
}

// goCipherSuites maps every TLS 1.0–1.2 suite Go implements to whether Go
// deems it insecure.
func goCipherSuites() map[uint16]bool {
	m := make(map[uint16]bool)
	for insecure, list := range [2][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, cs := range list {
			if slices.ContainsFunc(cs.SupportedVersions, func(v uint16) bool { return v <= tls.VersionTLS12 }) {
				m[cs.ID] = insecure == 1
			}
		}
	}
	return m
}

// goSuiteNames returns the OpenSSL names of the TLS 1.0–1.2 suites Go
// implements, secure and insecure, in OpenSSL's order.
func goSuiteNames() (secure, insecure []string) {
	goSuites := goCipherSuites()
	for _, s := range opensslSuites {
		if bad, ok := goSuites[s.id]; ok && bad {
			insecure = append(insecure, s.name)
		} else if ok {
			secure = append(secure, s.name)
		}
	}
	return secure, insecure
}

// CipherSuiteName returns the OpenSSL name of a suite (the IANA name for
// TLS 1.3 suites, as OpenSSL uses), falling back to Go's name.
func CipherSuiteName(id uint16) string {
	for _, s := range opensslSuites {
		if s.id == id {
			return s.name
		}
	}
	return tls.CipherSuiteName(id)
}

// tls13Suites are the TLS 1.3 suites Go implements.
var tls13Suites = [...]uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}

// ParseTLS13Ciphersuites parses MySQL's tls_ciphersuites: TLS 1.3 suite
// names as OpenSSL spells them, separated by ':'. Spaces around names and
// empty elements are ignored, duplicates are kept once. An empty string
// gives nil, meaning all three suites Go implements. The CCM suites, which
// Go does not implement, and unknown names are errors.
func ParseTLS13Ciphersuites(s string) ([]uint16, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var ids []uint16
	for _, name := range strings.Split(s, ":") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		id, err := lookupTLS13(name)
		if err != nil {
			return nil, fmt.Errorf("tls_ciphersuites: %w", err)
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("tls_ciphersuites %q names no suite", s)
	}
	return ids, nil
}

func lookupTLS13(name string) (uint16, error) {
	supported := make([]string, len(tls13Suites))
	for i, id := range tls13Suites {
		supported[i] = tls.CipherSuiteName(id)
		if strings.EqualFold(name, supported[i]) {
			return id, nil
		}
	}
	list := strings.Join(supported, ", ")
	for _, s := range opensslSuites {
		switch {
		case !strings.EqualFold(name, s.name) && !strings.EqualFold(name, s.std):
		case s.proto != "TLSv1.3":
			return 0, fmt.Errorf("%s is a TLS 1.2 suite: list it in ssl_cipher (tls_ciphersuites takes %s)", s.name, list)
		}
	}
	if strings.EqualFold(name, "TLS_AES_128_CCM_SHA256") || strings.EqualFold(name, "TLS_AES_128_CCM_8_SHA256") {
		return 0, fmt.Errorf("%s is not supported by Go (supported: %s)", name, list)
	}
	hint := ""
	if strings.ContainsAny(name, ", ") {
		hint = "; names are separated by ':'"
	}
	return 0, fmt.Errorf("unknown TLS 1.3 suite %q (supported: %s)%s", name, list, hint)
}

// SuitesMatchKey reports an error when suites lists TLS 1.2 suites but
// none can be used with key, the public key of the certificate this side
// presents: ECDSA and Ed25519 keys need ECDHE-ECDSA suites, RSA keys need
// ECDHE-RSA or RSA key-exchange suites. A handshake would otherwise fail
// whenever TLS 1.2 is negotiated. TLS 1.3 suites in the list are ignored;
// nil suites (Go's defaults) fit every key.
func SuitesMatchKey(suites []uint16, key crypto.PublicKey) error {
	var want, kind string
	switch key.(type) {
	case *ecdsa.PublicKey:
		want, kind = "ECDSA", "an ECDSA"
	case ed25519.PublicKey:
		want, kind = "ECDSA", "an Ed25519"
	case *rsa.PublicKey:
		want, kind = "RSA", "an RSA"
	default:
		return fmt.Errorf("ssl_cipher: unsupported certificate key type %T", key)
	}
	var tls12 []string
	for _, id := range suites {
		for _, s := range opensslSuites {
			if s.id != id || s.proto == "TLSv1.3" {
				continue
			}
			if s.au == want {
				return nil
			}
			tls12 = append(tls12, s.name)
		}
	}
	if len(tls12) == 0 {
		return nil
	}
	return fmt.Errorf("ssl_cipher allows no TLS 1.2 suite for %s certificate key (allowed: %s); add ECDHE-%s suites",
		kind, strings.Join(tls12, ", "), want)
}

// DefaultTLS12Suites are the TLS 1.2 suites a channel offers when
// ssl_cipher does not say: ECDHE key exchange with an AEAD cipher
// (AES-GCM or ChaCha20-Poly1305) only. Go's own defaults also offer the
// CBC-SHA1 suites, which a group of groupwire sidecars never needs.
func DefaultTLS12Suites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}
