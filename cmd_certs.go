package main

import (
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
	sub, args := args[0], args[1:]
	fs := newFlagSet("certs "+sub, stderr)
	dir := fs.String("dir", "", "CA folder")
	opts := devpki.DirOptions{IPs: map[string][]net.IP{}}
	var members string
	var keep bool
	switch sub {
	case "init", "issue":
		fs.BoolVar(&opts.Force, "force", false, "overwrite existing files")
		fs.DurationVar(&opts.Validity, "validity", 0, "member certificate lifetime (default 1 year)")
		fs.Func("ip", "NAME=ADDR: add an IP SAN to NAME's certificate (repeatable)", func(v string) error {
			name, addr, ok := strings.Cut(v, "=")
			ip := net.ParseIP(addr)
			if !ok || ip == nil {
				return fmt.Errorf("want NAME=IP, got %q", v)
			}
			opts.IPs[name] = append(opts.IPs[name], ip)
			return nil
		})
		if sub == "init" {
			fs.StringVar(&members, "members", "", "comma-separated member names")
			fs.BoolVar(&keep, "keep-existing", false, "if DIR already holds a CA, keep it and issue only missing members (for init containers)")
		}
	case "revoke", "crl":
	default:
		fmt.Fprint(stderr, certsUsage)
		return usageError{fmt.Sprintf("certs: unknown subcommand %q", sub)}
	}
	// Allow the member name before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("certs %s: unexpected argument %q", sub, fs.Arg(0))}
	}
	if *dir == "" {
		return usageError{fmt.Sprintf("certs %s: --dir is required", sub)}
	}
	opts.Dir = *dir
	switch sub {
	case "init":
		if members == "" || name != "" {
			return usageError{"certs init: --members a,b,c is required (and takes no NAME)"}
		}
		list := strings.Split(members, ",")
		if keep && opts.Force {
			return usageError{"certs init: --force and --keep-existing exclude each other"}
		}
		if _, err := os.Stat(filepath.Join(*dir, devpki.CAFile)); keep && err == nil {
			return issueMissing(opts, list, stdout)
		}
		if err := devpki.Init(opts, list); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "made a CA and certificates for %s in %s\n", strings.Join(list, ", "), *dir)
	case "issue":
		if name == "" {
			return usageError{"certs issue: NAME is required"}
		}
		if err := devpki.Issue(opts, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "issued %s in %s\n", devpki.CertPath(*dir, name), *dir)
	case "revoke":
		if name == "" {
			return usageError{"certs revoke: NAME is required"}
		}
		if err := devpki.Revoke(opts, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s's certificate; %s rewritten at %s\n", name, *dir+"/crl.pem", time.Now().UTC().Format(time.RFC3339))
	case "crl":
		if err := devpki.UpdateCRL(*dir); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "re-signed %s/crl.pem\n", *dir)
	}
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
