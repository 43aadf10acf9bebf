// Command gencipher writes transport/cipher_table.go: every cipher suite the
// local OpenSSL knows (IANA ID, OpenSSL name, IANA name, attributes) in
// OpenSSL's base order, and which suites each OpenSSL cipher-string alias
// selects. groupwire evaluates ssl_cipher strings against this table, so the
// sidecar never runs openssl itself.
//
// Usage (from package tlsopt, see the go:generate line in cipher.go):
//
//	go run ./internal/gencipher -o cipher_table.go
//
// The base order is the order of "ALL:COMPLEMENTOFALL"; alias membership is
// what "openssl ciphers -ciphersuites ” ALIAS:@SECLEVEL=0" prints. An alias
// that matches nothing in this build (RC4, 3DES) is kept with no members.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// aliases are the OpenSSL cipher-string aliases the table records. Names
// are OpenSSL's own (openssl-ciphers(1)); the evaluator refuses any other.
var aliases = []string{
	"ALL", "COMPLEMENTOFALL", "COMPLEMENTOFDEFAULT",
	"HIGH", "MEDIUM", "LOW",
	"aNULL", "eNULL", "NULL",
	"kRSA", "aRSA", "RSA",
	"kEECDH", "kECDHE", "EECDH", "ECDHE", "ECDH", "AECDH",
	"kDHE", "kEDH", "DHE", "EDH", "ADH",
	"aECDSA", "ECDSA", "aDSS", "DSS",
	"kPSK", "kECDHEPSK", "kDHEPSK", "kRSAPSK", "aPSK", "PSK", "kSRP", "aSRP", "SRP",
	"AES", "AES128", "AES256", "AESGCM", "AESCCM", "AESCCM8",
	"CAMELLIA", "CAMELLIA128", "CAMELLIA256", "ARIA", "ARIA128", "ARIA256", "ARIAGCM",
	"CHACHA20", "CBC", "3DES", "DES", "RC4", "RC2", "IDEA", "SEED",
	"MD5", "SHA1", "SHA", "SHA256", "SHA384",
	"SSLv3", "TLSv1", "TLSv1.0", "TLSv1.2",
	"SUITEB128", "SUITEB128ONLY", "SUITEB192",
}

// suite is one line of "openssl ciphers -V -stdname".
type suite struct {
	id                      uint16
	name, std               string
	proto, kx, au, enc, mac string
	bits                    int
	aliases                 []string // only for legacy suites
}

// legacy are suites Go still implements (tls.InsecureCipherSuites) that
// OpenSSL 3 builds without the legacy provider no longer list. Their names
// and attributes are OpenSSL's, from its ssl/s3_lib.c; their aliases are
// those their attributes imply, and like RC4 since OpenSSL 1.1.0, 3DES is
// not in DEFAULT. They sort after every listed suite.
var legacy = []suite{
	{id: 0x0005, name: "RC4-SHA", std: "TLS_RSA_WITH_RC4_128_SHA", proto: "SSLv3", kx: "RSA", au: "RSA", enc: "RC4(128)", mac: "SHA1", bits: 128,
		aliases: []string{"ALL", "COMPLEMENTOFDEFAULT", "kRSA", "aRSA", "RSA", "RC4", "SHA1", "SHA", "SSLv3", "TLSv1", "TLSv1.0"}},
	{id: 0x000A, name: "DES-CBC3-SHA", std: "TLS_RSA_WITH_3DES_EDE_CBC_SHA", proto: "SSLv3", kx: "RSA", au: "RSA", enc: "3DES(168)", mac: "SHA1", bits: 112,
		aliases: []string{"ALL", "COMPLEMENTOFDEFAULT", "MEDIUM", "kRSA", "aRSA", "RSA", "3DES", "CBC", "SHA1", "SHA", "SSLv3", "TLSv1", "TLSv1.0"}},
	{id: 0xC007, name: "ECDHE-ECDSA-RC4-SHA", std: "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", proto: "TLSv1", kx: "ECDH", au: "ECDSA", enc: "RC4(128)", mac: "SHA1", bits: 128,
		aliases: []string{"ALL", "COMPLEMENTOFDEFAULT", "kEECDH", "kECDHE", "EECDH", "ECDHE", "ECDH", "aECDSA", "ECDSA", "RC4", "SHA1", "SHA", "TLSv1", "TLSv1.0"}},
	{id: 0xC011, name: "ECDHE-RSA-RC4-SHA", std: "TLS_ECDHE_RSA_WITH_RC4_128_SHA", proto: "TLSv1", kx: "ECDH", au: "RSA", enc: "RC4(128)", mac: "SHA1", bits: 128,
		aliases: []string{"ALL", "COMPLEMENTOFDEFAULT", "kEECDH", "kECDHE", "EECDH", "ECDHE", "ECDH", "aRSA", "RC4", "SHA1", "SHA", "TLSv1", "TLSv1.0"}},
	{id: 0xC012, name: "ECDHE-RSA-DES-CBC3-SHA", std: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", proto: "TLSv1", kx: "ECDH", au: "RSA", enc: "3DES(168)", mac: "SHA1", bits: 112,
		aliases: []string{"ALL", "COMPLEMENTOFDEFAULT", "MEDIUM", "kEECDH", "kECDHE", "EECDH", "ECDHE", "ECDH", "aRSA", "3DES", "CBC", "SHA1", "SHA", "TLSv1", "TLSv1.0"}},
}

func main() {
	out := flag.String("o", "cipher_table.go", "output file")
	openssl := flag.String("openssl", "openssl", "openssl binary")
	flag.Parse()
	if err := run(*openssl, *out); err != nil {
		log.Fatalf("gencipher: %v", err)
	}
}

func run(openssl, out string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	version, err := command(ctx, openssl, "version")
	if err != nil {
		return err
	}
	text, err := command(ctx, openssl, "ciphers", "-V", "-stdname", "ALL:COMPLEMENTOFALL:@SECLEVEL=0")
	if err != nil {
		return err
	}
	suites, err := parseSuites(text)
	if err != nil {
		return err
	}
	members := make(map[string][]uint16, len(aliases))
	for _, a := range aliases {
		ids, err := aliasMembers(ctx, openssl, a)
		if err != nil {
			return err
		}
		members[a] = ids
	}
	for _, l := range legacy {
		for _, s := range suites {
			if s.id == l.id {
				return fmt.Errorf("legacy suite %s (0x%04X) is listed by this openssl; drop it from the legacy table", l.name, l.id)
			}
		}
		suites = append(suites, l)
		for _, a := range l.aliases {
			if _, ok := members[a]; !ok {
				return fmt.Errorf("legacy suite %s: unknown alias %s", l.name, a)
			}
			members[a] = append(members[a], l.id)
		}
	}
	version, _, _ = strings.Cut(strings.TrimSpace(version), " (")
	src, err := format.Source(render(version, suites, members))
	if err != nil {
		return fmt.Errorf("format generated source: %w", err)
	}
	if err := os.WriteFile(out, src, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

func command(ctx context.Context, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// aliasMembers lists the TLS ≤1.2 suites an alias selects, in OpenSSL's order.
func aliasMembers(ctx context.Context, openssl, alias string) ([]uint16, error) {
	text, err := command(ctx, openssl, "ciphers", "-V", "-stdname", "-ciphersuites", "", alias+":@SECLEVEL=0")
	if err != nil {
		if strings.Contains(err.Error(), "no cipher match") {
			return nil, nil
		}
		return nil, err
	}
	suites, err := parseSuites(text)
	if err != nil {
		return nil, fmt.Errorf("alias %s: %w", alias, err)
	}
	ids := make([]uint16, len(suites))
	for i, s := range suites {
		ids[i] = s.id
	}
	return ids, nil
}

// parseSuites parses lines such as
//
//	0xC0,0x2C - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 - ECDHE-ECDSA-AES256-GCM-SHA384 TLSv1.2 Kx=ECDH Au=ECDSA Enc=AESGCM(256) Mac=AEAD
func parseSuites(text string) ([]suite, error) {
	var suites []suite
	for n, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) != 10 || f[1] != "-" || f[3] != "-" {
			return nil, fmt.Errorf("line %d: unexpected format: %q", n+1, line)
		}
		hi, err1 := strconv.ParseUint(strings.TrimPrefix(f[0][:4], "0x"), 16, 8)
		lo, err2 := strconv.ParseUint(strings.TrimPrefix(f[0][5:], "0x"), 16, 8)
		if err1 != nil || err2 != nil || len(f[0]) != 9 {
			return nil, fmt.Errorf("line %d: bad cipher ID %q", n+1, f[0])
		}
		s := suite{id: uint16(hi<<8 | lo), std: f[2], name: f[4], proto: f[5]}
		for _, kv := range f[6:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "Kx":
				s.kx = v
			case "Au":
				s.au = v
			case "Enc":
				s.enc = v
			case "Mac":
				s.mac = v
			default:
				return nil, fmt.Errorf("line %d: unexpected field %q", n+1, kv)
			}
		}
		if i, j := strings.IndexByte(s.enc, '('), strings.IndexByte(s.enc, ')'); i >= 0 && j > i {
			bits, err := strconv.Atoi(s.enc[i+1 : j])
			if err != nil {
				return nil, fmt.Errorf("line %d: bad key size in %q", n+1, s.enc)
			}
			s.bits = bits
		}
		suites = append(suites, s)
	}
	return suites, nil
}

func render(version string, suites []suite, members map[string][]uint16) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by gencipher from %s; DO NOT EDIT.\n\n", version)
	b.WriteString("package tlsopt\n\n")
	b.WriteString("// opensslSuites lists every suite OpenSSL knows, in OpenSSL's base order\n")
	b.WriteString("// (that of \"ALL:COMPLEMENTOFALL\"), followed by the legacy RC4/3DES suites\n")
	b.WriteString("// Go still implements.\n")
	b.WriteString("var opensslSuites = [...]opensslSuite{\n")
	for _, s := range suites {
		fmt.Fprintf(&b, "\t{id: 0x%04X, name: %q, std: %q, proto: %q, kx: %q, au: %q, enc: %q, mac: %q, bits: %d},\n",
			s.id, s.name, s.std, s.proto, s.kx, s.au, s.enc, s.mac, s.bits)
	}
	b.WriteString("}\n\n")
	b.WriteString("// opensslAliases lists the TLS 1.2-and-older suites each OpenSSL alias selects.\n")
	b.WriteString("var opensslAliases = [...]opensslAlias{\n")
	for _, a := range aliases {
		fmt.Fprintf(&b, "\t{name: %q, ids: []uint16{", a)
		for i, id := range members[a] {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "0x%04X", id)
		}
		b.WriteString("}},\n")
	}
	b.WriteString("}\n")
	return b.Bytes()
}
