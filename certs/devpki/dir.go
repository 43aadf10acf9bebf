package devpki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// DefaultCAName is the common name of the CA that Init makes when
// DirOptions.CAName is empty.
const DefaultCAName = "groupwire development CA"

// DirOptions configures the directory operations Init, Issue and Revoke.
type DirOptions struct {
	// Dir is the CA folder; Init creates it if missing.
	Dir string
	// Force allows overwriting existing files.
	Force bool
	// IPs are extra IP subject alternative names by member name.
	IPs map[string][]net.IP
	// Validity is the lifetime of member certificates; zero means 1 year.
	Validity time.Duration
	// CAName is the CA's common name for Init; empty means DefaultCAName.
	CAName string
	// CRLURL is the http:// URL where the CA's CRL will be published
	// (crl.pem served as it is): member certificates name it as their
	// CRL distribution point, for ssl_crl_fetch. Init records it in
	// state.json, so later issues keep it; Issue may set a new one.
	CRLURL string
}

// validity returns the member certificate lifetime, after checking the
// CRL URL too.
func (o DirOptions) validity() (time.Duration, error) {
	if o.CRLURL != "" {
		if u, err := url.Parse(o.CRLURL); err != nil || u.Scheme != "http" || u.Host == "" {
			return 0, fmt.Errorf("devpki: CRL URL %q is not an http:// URL (distribution points are fetched over plain HTTP; the CRL is signed)", o.CRLURL)
		}
	}
	switch {
	case o.Validity < 0:
		return 0, fmt.Errorf("devpki: validity %v is negative", o.Validity)
	case o.Validity == 0:
		return leafValidity, nil
	}
	return o.Validity, nil
}

// Init makes a CA folder: ca.pem, ca-key.pem (0600), for each member
// NAME.pem (the leaf only) and NAME-key.pem (0600), crl.pem (an empty v2
// CRL, number 1, nextUpdate in 30 days) and state.json. Nothing is written
// if any of these files exists and opts.Force is false; the error names the
// file. Every member name must be a DNS label, and every key of opts.IPs a
// member.
func Init(opts DirOptions, members []string) error {
	if opts.Dir == "" {
		return errors.New("devpki: init: empty folder name")
	}
	validity, err := opts.validity()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	files := []string{CAFile, CAKeyFile, CRLFile, StateFile}
	for _, m := range members {
		if err := checkMemberName(m); err != nil {
			return fmt.Errorf("devpki: init %s: %w", opts.Dir, err)
		}
		if seen[m] {
			return fmt.Errorf("devpki: init %s: member %q listed twice", opts.Dir, m)
		}
		seen[m] = true
		files = append(files, filepath.Base(CertPath("", m)), filepath.Base(KeyPath("", m)))
	}
	for name := range opts.IPs {
		if !seen[name] {
			return fmt.Errorf("devpki: init %s: IPs given for %q, which is not a member", opts.Dir, name)
		}
	}
	if !opts.Force {
		for _, f := range files {
			if err := refuseExisting(filepath.Join(opts.Dir, f)); err != nil {
				return err
			}
		}
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return fmt.Errorf("devpki: init: %w", err)
	}

	caName := opts.CAName
	if caName == "" {
		caName = DefaultCAName
	}
	ca, err := NewRootCA(caName)
	if err != nil {
		return err
	}
	st := &dirState{Version: stateVersion, NextCRLNumber: 1, Members: map[string]*memberState{}, Revoked: []revokedCert{}}
	if err := WriteFile(filepath.Join(opts.Dir, CAKeyFile), ca.KeyPEM, 0o600); err != nil {
		return err
	}
	if err := WriteFile(filepath.Join(opts.Dir, CAFile), ca.CertPEM, 0o644); err != nil {
		return err
	}
	for _, m := range members {
		if err := issueMember(ca, st, opts, m, validity); err != nil {
			return err
		}
	}
	if err := writeCRL(ca, st, opts.Dir); err != nil {
		return err
	}
	return st.save(opts.Dir)
}

// Issue adds member to the CA folder, or renews its certificate with a new
// key and serial. If NAME.pem or NAME-key.pem exists, opts.Force is needed.
// A renewal leaves the old certificate unrevoked (revoke first to retire
// it).
func Issue(opts DirOptions, member string) error {
	if err := checkMemberName(member); err != nil {
		return fmt.Errorf("devpki: issue in %s: %w", opts.Dir, err)
	}
	validity, err := opts.validity()
	if err != nil {
		return err
	}
	ca, st, err := openWithState(opts.Dir)
	if err != nil {
		return err
	}
	if !opts.Force {
		for _, f := range []string{CertPath(opts.Dir, member), KeyPath(opts.Dir, member)} {
			if err := refuseExisting(f); err != nil {
				return err
			}
		}
	}
	if err := issueMember(ca, st, opts, member, validity); err != nil {
		return err
	}
	return st.save(opts.Dir)
}

// Revoke puts member's current certificate on the CA's revocation list and
// rewrites crl.pem atomically with the next CRL number.
func Revoke(opts DirOptions, member string) error {
	ca, st, err := openWithState(opts.Dir)
	if err != nil {
		return err
	}
	m, ok := st.Members[member]
	if !ok {
		return fmt.Errorf("devpki: revoke %q: not a member in %s", member, filepath.Join(opts.Dir, StateFile))
	}
	if st.isRevoked(m.Current) {
		return fmt.Errorf("devpki: revoke %q: its certificate serial %s is already revoked", member, m.Current)
	}
	st.Revoked = append(st.Revoked, revokedCert{Serial: m.Current, Member: member, RevokedAt: time.Now().UTC().Truncate(time.Second)})
	if err := writeCRL(ca, st, opts.Dir); err != nil {
		return err
	}
	return st.save(opts.Dir)
}

// UpdateCRL re-signs crl.pem with the same revoked list, a new CRL number
// and a fresh nextUpdate (30 days), for folders that outlive their CRL.
func UpdateCRL(dir string) error {
	ca, st, err := openWithState(dir)
	if err != nil {
		return err
	}
	if err := writeCRL(ca, st, dir); err != nil {
		return err
	}
	return st.save(dir)
}

// openWithState loads the CA and state.json of dir.
func openWithState(dir string) (*CA, *dirState, error) {
	if dir == "" {
		return nil, nil, errors.New("devpki: empty folder name")
	}
	ca, err := OpenDir(dir)
	if err != nil {
		return nil, nil, err
	}
	st, err := loadState(dir)
	if err != nil {
		return nil, nil, err
	}
	return ca, st, nil
}

// issueMember makes and writes member's certificate and key and records
// them in st.
func issueMember(ca *CA, st *dirState, opts DirOptions, member string, validity time.Duration) error {
	now := time.Now()
	leaf, err := ca.Issue(LeafTemplate{
		CommonName:            member,
		DNSNames:              []string{member},
		IPs:                   opts.IPs[member],
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validity),
		CRLDistributionPoints: crlURLs(opts.CRLURL, st.CRLURL),
	})
	if err != nil {
		return err
	}
	if err := WriteFile(KeyPath(opts.Dir, member), leaf.KeyPEM, 0o600); err != nil {
		return err
	}
	if err := WriteFile(CertPath(opts.Dir, member), leaf.CertPEM, 0o644); err != nil {
		return err
	}
	m := st.Members[member]
	if m == nil {
		m = &memberState{}
		st.Members[member] = m
	}
	m.Current = serialHex(leaf.Cert.SerialNumber)
	if opts.CRLURL != "" {
		st.CRLURL = opts.CRLURL
	}
	m.Issued = append(m.Issued, issuedCert{Serial: m.Current, NotBefore: leaf.Cert.NotBefore, NotAfter: leaf.Cert.NotAfter})
	return nil
}

// crlURLs is the distribution point of a new certificate: the one asked
// for, else the folder's.
func crlURLs(asked, folder string) []string {
	if asked == "" {
		asked = folder
	}
	if asked == "" {
		return nil
	}
	return []string{asked}
}

// writeCRL signs st's revoked list as the next CRL and writes crl.pem.
func writeCRL(ca *CA, st *dirState, dir string) error {
	now := time.Now()
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(st.NextCRLNumber),
		ThisUpdate: now,
		NextUpdate: now.Add(crlValidity),
	}
	for _, r := range st.Revoked {
		serial, err := parseSerialHex(r.Serial)
		if err != nil {
			return fmt.Errorf("devpki: revoked serial of %q: %w", r.Member, err)
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: serial, RevocationTime: r.RevokedAt})
	}
	pemCRL, err := ca.CRLFrom(tmpl)
	if err != nil {
		return err
	}
	if err := WriteFile(filepath.Join(dir, CRLFile), pemCRL, 0o644); err != nil {
		return err
	}
	st.NextCRLNumber++
	return nil
}

// refuseExisting returns an error naming path if it exists (or cannot be
// checked).
func refuseExisting(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return fmt.Errorf("devpki: %s already exists (use force to overwrite)", path)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return fmt.Errorf("devpki: check %s: %w", path, err)
	}
}
