package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
)

const certsUsage = `Usage:
  groupwire certs init   --dir DIR --members a,b,c [--ip a=127.0.0.11 ...] [--validity 8760h] [--force]
  groupwire certs issue  --dir DIR NAME [--ip NAME=ADDR ...] [--validity 8760h] [--force]
  groupwire certs revoke --dir DIR NAME
  groupwire certs crl    --dir DIR          (re-sign the CRL, e.g. before it expires)

A development CA: ca.pem, ca-key.pem, NAME.pem, NAME-key.pem and crl.pem in DIR,
ECDSA P-256, member certificates with serverAuth+clientAuth and the member name as DNS SAN.
Keys are written 0600; existing files are never overwritten without --force.
`

// runCerts is `groupwire certs`: the development PKI.
func runCerts(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, certsUsage)
		return usageError{}
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
		fmt.Fprintf(stdout, "revoked %s's certificate; %s rewritten at %s\n", req.name, req.opts.Dir+"/crl.pem", time.Now().UTC().Format(time.RFC3339))
	case "crl":
		if err := devpki.UpdateCRL(req.opts.Dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "re-signed %s/crl.pem\n", req.opts.Dir)
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
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		req.name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return req, usageError{err.Error()}
	}
	if req.name == "" && fs.NArg() > 0 {
		req.name = fs.Arg(0)
	} else if fs.NArg() > 0 {
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
