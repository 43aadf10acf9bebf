package main

import (
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/groupwire/groupwire/certs"
	"github.com/groupwire/groupwire/certs/devpki"
)

const certsUsage = `Usage:
  groupwire certs init   --dir DIR --members a,b,c [--ca-name NAME] [--ip a=127.0.0.11 ...] [--validity 8760h] [--crl-url URL] [--force]
  groupwire certs issue  --dir DIR NAME [--ip NAME=ADDR ...] [--validity 8760h] [--crl-url URL] [--force]
  groupwire certs revoke --dir DIR NAME
  groupwire certs crl    --dir DIR          (re-sign the CRL, e.g. before it expires)
  groupwire certs bundle --out FILE [--crl-out FILE] DIR|FILE...
                         (the CA certificates, and with --crl-out the CRLs, of several CA folders
                         or files in one ssl_ca and one ssl_crl file: a CA rotation trusts both CAs)

A development CA: ca.pem, ca-key.pem, NAME.pem, NAME-key.pem and crl.pem in DIR,
ECDSA P-256, member certificates with serverAuth+clientAuth and the member name as DNS SAN.
Keys are written 0600; existing files are never overwritten without --force.

A CA is its folder. To rotate CAs, init a second folder with its own --ca-name, bundle
both CAs into the members' ssl_ca, move every member to its certificate from the new
folder, then point ssl_ca at the new CA alone (README: "Rotating the CA").
`

// runCerts is `groupwire certs`: the development PKI.
func runCerts(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, certsUsage)
		return usageError{}
	}
	if args[0] == "bundle" {
		return certsBundle(args[1:], stdout, stderr)
	}
	req, err := parseCertsArgs(args[0], args[1:], stderr)
	if err != nil {
		return err
	}
	switch req.sub {
	case "init":
		return certsInit(req, stdout)
	case "issue":
		if req.name == "" {
			return usageError{"certs issue: NAME is required"}
		}
		if err := devpki.Issue(req.opts, req.name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "issued %s in %s\n", devpki.CertPath(req.opts.Dir, req.name), req.opts.Dir)
	case "revoke":
		if req.name == "" {
			return usageError{"certs revoke: NAME is required"}
		}
		if err := devpki.Revoke(req.opts, req.name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s's certificate; %s rewritten at %s\n", req.name, filepath.Join(req.opts.Dir, devpki.CRLFile), time.Now().UTC().Format(time.RFC3339))
	case "crl":
		if err := devpki.UpdateCRL(req.opts.Dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "re-signed %s\n", filepath.Join(req.opts.Dir, devpki.CRLFile))
	}
	return nil
}

// certsRequest is one parsed `groupwire certs` command line.
type certsRequest struct {
	sub     string // init, issue, revoke, crl
	name    string // the member, for issue and revoke
	members string // init's --members
	keep    bool   // init's --keep-existing
	opts    devpki.DirOptions
}

// parseCertsArgs parses the flags of certs subcommand sub; the member name
// may stand before or after them.
func parseCertsArgs(sub string, args []string, stderr io.Writer) (certsRequest, error) {
	req := certsRequest{sub: sub, opts: devpki.DirOptions{IPs: map[string][]net.IP{}}}
	fs := newFlagSet("certs "+sub, stderr)
	fs.StringVar(&req.opts.Dir, "dir", "", "CA folder")
	switch sub {
	case "init", "issue":
		addIssueFlags(fs, &req)
	case "revoke", "crl":
	default:
		fmt.Fprint(stderr, certsUsage)
		return req, usageError{fmt.Sprintf("certs: unknown subcommand %q", sub)}
	}
	// The member name may stand anywhere among the flags.
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		req.name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return req, usageError{err.Error()}
	}
	if req.name == "" && fs.NArg() > 0 {
		req.name = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return req, usageError{err.Error()}
		}
	}
	if fs.NArg() > 0 {
		return req, usageError{fmt.Sprintf("certs %s: unexpected argument %q", sub, fs.Arg(0))}
	}
	if req.opts.Dir == "" {
		return req, usageError{fmt.Sprintf("certs %s: --dir is required", sub)}
	}
	return req, nil
}

// addIssueFlags adds the flags of the subcommands that issue certificates.
func addIssueFlags(fs *flag.FlagSet, req *certsRequest) {
	fs.BoolVar(&req.opts.Force, "force", false, "overwrite existing files")
	fs.DurationVar(&req.opts.Validity, "validity", 0, "member certificate lifetime (default 1 year)")
	fs.StringVar(&req.opts.CRLURL, "crl-url", "", "http:// URL where DIR/crl.pem will be published: certificates name it as their CRL distribution point (ssl_crl_fetch); init keeps it for later issues")
	fs.Func("ip", "NAME=ADDR: add an IP SAN to NAME's certificate (repeatable)", func(v string) error {
		name, addr, ok := strings.Cut(v, "=")
		ip := net.ParseIP(addr)
		if !ok || ip == nil {
			return fmt.Errorf("want NAME=IP, got %q", v)
		}
		req.opts.IPs[name] = append(req.opts.IPs[name], ip)
		return nil
	})
	if req.sub == "init" {
		fs.StringVar(&req.members, "members", "", "comma-separated member names")
		fs.StringVar(&req.opts.CAName, "ca-name", "", "the CA's common name (default \""+devpki.DefaultCAName+"\"); give a second CA a name of its own")
		fs.BoolVar(&req.keep, "keep-existing", false, "if DIR already holds a CA, keep it and issue only missing members (for init containers)")
	}
}

// certsInit is `certs init`: a CA and a certificate per member, or with
// --keep-existing only the members still missing.
func certsInit(req certsRequest, stdout io.Writer) error {
	if req.members == "" || req.name != "" {
		return usageError{"certs init: --members a,b,c is required (and takes no NAME)"}
	}
	list := strings.Split(req.members, ",")
	if req.keep && req.opts.Force {
		return usageError{"certs init: --force and --keep-existing exclude each other"}
	}
	if _, err := os.Stat(filepath.Join(req.opts.Dir, devpki.CAFile)); req.keep && err == nil {
		return issueMissing(req.opts, list, stdout)
	}
	if err := devpki.Init(req.opts, list); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "made a CA and certificates for %s in %s\n", strings.Join(list, ", "), req.opts.Dir)
	return nil
}

// issueMissing issues certificates for the members of an existing CA
// folder that have none yet.
func issueMissing(opts devpki.DirOptions, members []string, stdout io.Writer) error {
	for _, m := range members {
		if _, err := os.Stat(devpki.CertPath(opts.Dir, m)); err == nil {
			continue
		}
		if err := devpki.Issue(opts, m); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "issued %s\n", devpki.CertPath(opts.Dir, m))
	}
	fmt.Fprintf(stdout, "kept the existing CA in %s\n", opts.Dir)
	return nil
}

// certsBundle is `certs bundle`: the CA certificate of each CA folder,
// concatenated into one PEM file for ssl_ca, as a CA rotation needs while
// members hold certificates from both.
func certsBundle(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("certs bundle", stderr)
	out := fs.String("out", "", "CA bundle file to write (for ssl_ca)")
	crlOut := fs.String("crl-out", "", "CRL bundle file to write (for ssl_crl): each folder's crl.pem")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *out == "" || fs.NArg() == 0 {
		return usageError{"certs bundle: --out FILE and at least one CA folder are required"}
	}
	if *crlOut != "" {
		if err := bundleCRLs(*crlOut, fs.Args(), stdout); err != nil {
			return fmt.Errorf("certs bundle: %w", err)
		}
	}
	var bundle []byte
	n := 0
	for _, arg := range fs.Args() {
		b, count, err := caCertificates(arg)
		if err != nil {
			return fmt.Errorf("certs bundle: %w", err)
		}
		bundle, n = append(bundle, b...), n+count
	}
	if err := devpki.WriteFile(*out, bundle, 0o644); err != nil {
		return fmt.Errorf("certs bundle: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %d CA certificate(s) to %s\n", n, *out)
	return nil
}

// caCertificates reads the CA certificates of a CA folder (its ca.pem) or
// of a PEM file, re-encoded, and how many there are. A certificate that
// is not a CA's is an error naming the file.
func caCertificates(arg string) ([]byte, int, error) {
	path := arg
	if st, err := os.Stat(arg); err == nil && st.IsDir() {
		path = filepath.Join(arg, devpki.CAFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	cas, err := certs.ParseCertificatesPEM(data)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	var out []byte
	for i, c := range cas {
		if !c.IsCA {
			return nil, 0, fmt.Errorf("%s: certificate #%d (%s) is not a CA certificate", path, i+1, c.Subject)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out, len(cas), nil
}

// bundleCRLs writes the crl.pem of every CA folder in dirs into one file.
func bundleCRLs(out string, dirs []string, stdout io.Writer) error {
	var bundle []byte
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, devpki.CRLFile))
		if err != nil {
			return fmt.Errorf("--crl-out needs CA folders: %w", err)
		}
		bundle = append(bundle, b...)
	}
	if err := devpki.WriteFile(out, bundle, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d CRL file(s) to %s\n", len(dirs), out)
	return nil
}
