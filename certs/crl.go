package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"time"
)

// CRLSet indexes loaded CRLs by issuer, with revoked serials in a set. The
// parsed lists are dropped after indexing: a 100,000-entry CRL keeps about
// 5 MiB here instead of 30+ MiB. A CRLSet is immutable once built.
type CRLSet struct {
	byIssuer map[string][]*crlIndex // key: the issuing CA's RawSubject
	all      []*crlIndex            // in load order, for Info
}

// CRLInfo describes one loaded CRL, for metrics and the status page.
type CRLInfo struct {
	File       string    // the file it was loaded from
	Issuer     string    // subject of the CA that signed it
	ThisUpdate time.Time // when it was issued
	NextUpdate time.Time // when it expires; zero if the CRL names none
	Revoked    int       // number of revoked serials
}

// crlIndex is what Check needs of one CRL.
type crlIndex struct {
	file       string
	issuer     *x509.Certificate // the configured CA whose key signed it
	thisUpdate time.Time
	nextUpdate time.Time
	revoked    map[string]struct{} // key: serialKey
	// critical names an unhandled critical extension of the CRL or of one
	// of its entries; such a CRL fails every check, as in OpenSSL.
	critical string
}

// Info lists the loaded CRLs in load order. A nil set has none.
func (s *CRLSet) Info() []CRLInfo {
	if s == nil {
		return nil
	}
	out := make([]CRLInfo, 0, len(s.all))
	for _, c := range s.all {
		out = append(out, CRLInfo{
			File:       c.file,
			Issuer:     c.issuer.Subject.String(),
			ThisUpdate: c.thisUpdate,
			NextUpdate: c.nextUpdate,
			Revoked:    len(c.revoked),
		})
	}
	return out
}

// loadCRLs reads ssl_crl and ssl_crlpath into a CRLSet, checking each CRL's
// signature against one of cas. Both empty gives a nil set (no checking).
func loadCRLs(crlFile, crlPath string, cas []*x509.Certificate, d *digester) (*CRLSet, error) {
	if crlFile == "" && crlPath == "" {
		return nil, nil
	}
	set := &CRLSet{byIssuer: make(map[string][]*crlIndex)}
	seen := make(map[[32]byte]bool)
	add := func(option, path string) error {
		ders, err := readParsed(option, path, d, crlDERs)
		if err != nil {
			return err
		}
		for i, der := range ders {
			sum := sha256.Sum256(der)
			if seen[sum] {
				continue
			}
			seen[sum] = true
			idx, err := indexCRL(der, path, cas)
			if err != nil {
				if len(ders) > 1 {
					err = fmt.Errorf("CRL #%d: %w", i+1, err)
				}
				return loadError(option, path, err)
			}
			key := string(idx.issuer.RawSubject)
			set.byIssuer[key] = append(set.byIssuer[key], idx)
			set.all = append(set.all, idx)
		}
		return nil
	}
	if err := fileAndDir("ssl_crl", crlFile, "ssl_crlpath", crlPath, hashedCRLName, []string{".crl", ".pem"}, add); err != nil {
		return nil, err
	}
	// Newest first, so that Check prefers the most recent CRL of an issuer.
	for _, list := range set.byIssuer {
		sort.SliceStable(list, func(i, j int) bool { return list[i].thisUpdate.After(list[j].thisUpdate) })
	}
	return set, nil
}

// crlDERs returns the DER of every "X509 CRL" block of a PEM file, or the
// file itself when it is not PEM (a DER CRL).
func crlDERs(data []byte) ([][]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if !bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		if len(trimmed) == 0 {
			return nil, errors.New("file is empty")
		}
		return [][]byte{data}, nil
	}
	var out [][]byte
	rest := trimmed
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if err := checkPEMRest(rest); err != nil {
				return nil, err
			}
			break
		}
		if block.Type == "X509 CRL" {
			out = append(out, block.Bytes)
		}
	}
	if len(out) == 0 {
		return nil, errors.New(`no PEM "X509 CRL" block found`)
	}
	return out, nil
}

// indexCRL parses one DER CRL (v2, or v1 through the deprecated parser),
// verifies its signature against the configured CA that issued it, and
// keeps only what Check needs.
func indexCRL(der []byte, file string, cas []*x509.Certificate) (*crlIndex, error) {
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		idx, v1err := indexCRLv1(der, file, cas)
		if v1err == nil {
			return idx, nil
		}
		if errors.Is(v1err, errNotV1) {
			return nil, fmt.Errorf("parse CRL: %w", err)
		}
		return nil, v1err
	}
	issuer, err := crlIssuer(rl.RawIssuer, rl.Issuer.String(), cas, rl.CheckSignatureFrom)
	if err != nil {
		return nil, err
	}
	idx := newCRLIndex(file, issuer, rl.ThisUpdate, rl.NextUpdate, rl.Extensions, len(rl.RevokedCertificateEntries))
	for _, e := range rl.RevokedCertificateEntries {
		idx.addRevoked(e.SerialNumber, e.Extensions)
	}
	return idx, nil
}

// newCRLIndex returns an empty index of one CRL, room made for n entries.
func newCRLIndex(file string, issuer *x509.Certificate, thisUpdate, nextUpdate time.Time, exts []pkix.Extension, n int) *crlIndex {
	return &crlIndex{
		file:       file,
		issuer:     issuer,
		thisUpdate: thisUpdate,
		nextUpdate: nextUpdate,
		revoked:    make(map[string]struct{}, n),
		critical:   unhandledCritical(exts, crlExtHandled),
	}
}

// addRevoked records one revoked serial, noting the first entry with a
// critical extension groupwire does not handle.
func (idx *crlIndex) addRevoked(serial *big.Int, exts []pkix.Extension) {
	if c := unhandledCritical(exts, entryExtHandled); c != "" && idx.critical == "" {
		idx.critical = "entry " + formatSerial(serial) + ": " + c
	}
	idx.revoked[string(serialKey(serial, nil))] = struct{}{}
}

// revokes reports whether the CRL lists serial. It allocates nothing for
// serials of up to 32 bytes (every CA's in practice; RFC 5280 allows 20).
func (idx *crlIndex) revokes(serial *big.Int) bool {
	var buf [32]byte
	_, ok := idx.revoked[string(serialKey(serial, buf[:0]))]
	return ok
}

// errNotV1 says that the deprecated parser's result is not a v1 CRL, so
// the fallback does not apply.
var errNotV1 = errors.New("not a v1 CRL")

// indexCRLv1 handles v1 CRLs (no version field), which
// x509.ParseRevocationList rejects but OpenSSL and old MySQL test data use.
func indexCRLv1(der []byte, file string, cas []*x509.Certificate) (*crlIndex, error) {
	// The deprecated parser is the only one in crypto/x509 that reads v1.
	cl, err := x509.ParseDERCRL(der)
	if err != nil || cl.TBSCertList.Version != 0 {
		return nil, errNotV1
	}
	tbs := &cl.TBSCertList
	check := func(ca *x509.Certificate) error {
		return ca.CheckCRLSignature(cl)
	}
	issuer, err := crlIssuer(nil, tbs.Issuer.String(), cas, check)
	if err != nil {
		return nil, err
	}
	idx := newCRLIndex(file, issuer, tbs.ThisUpdate, tbs.NextUpdate, tbs.Extensions, len(tbs.RevokedCertificates))
	for _, e := range tbs.RevokedCertificates {
		idx.addRevoked(e.SerialNumber, e.Extensions)
	}
	return idx, nil
}

// crlIssuer finds the configured CA that signed a CRL. CAs are matched by
// raw subject when rawIssuer is known, else by the subject's string form;
// among those, the first whose key verifies the signature wins.
func crlIssuer(rawIssuer []byte, issuerName string, cas []*x509.Certificate, check func(*x509.Certificate) error) (*x509.Certificate, error) {
	var sigErr error
	named := false
	for _, ca := range cas {
		if rawIssuer != nil && !bytes.Equal(ca.RawSubject, rawIssuer) {
			continue
		}
		if rawIssuer == nil && ca.Subject.String() != issuerName {
			continue
		}
		named = true
		if err := check(ca); err != nil {
			sigErr = err
			continue
		}
		return ca, nil
	}
	if !named {
		return nil, fmt.Errorf("CRL issuer %q is not a configured CA (ssl_ca/ssl_capath)", issuerName)
	}
	return nil, fmt.Errorf("CRL signature does not verify with the key of configured CA %q: %w", issuerName, sigErr)
}

// OIDs of the extensions Check handles; any other critical one makes the
// CRL unusable. Issuing distribution points and delta CRL indicators are
// deliberately not handled.
var (
	crlExtHandled = []asn1.ObjectIdentifier{
		{2, 5, 29, 20}, // cRLNumber
		{2, 5, 29, 35}, // authorityKeyIdentifier
	}
	entryExtHandled = []asn1.ObjectIdentifier{
		{2, 5, 29, 21}, // reasonCode
		{2, 5, 29, 24}, // invalidityDate
	}
)

// unhandledCritical names the first critical extension not in handled, or
// returns "".
func unhandledCritical(exts []pkix.Extension, handled []asn1.ObjectIdentifier) string {
next:
	for _, e := range exts {
		if !e.Critical {
			continue
		}
		for _, h := range handled {
			if e.Id.Equal(h) {
				continue next
			}
		}
		return "unhandled critical extension " + e.Id.String()
	}
	return ""
}

// serialKey encodes a serial number as a map key: its big-endian magnitude,
// with a leading '-' for the (non-conforming) negative ones. buf, when big
// enough, avoids an allocation.
func serialKey(n *big.Int, buf []byte) []byte {
	size := (n.BitLen() + 7) / 8
	if n.Sign() < 0 {
		return append([]byte{'-'}, n.Bytes()...)
	}
	if cap(buf) < size {
		return n.Bytes()
	}
	return n.FillBytes(buf[:size])
}
