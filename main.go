// Command groupwire is a TLS sidecar for the peer-to-peer traffic of a
// replicated group (MySQL Group Replication, Galera, etcd, ...). See
// README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue usageError
		if !errors.As(err, &ue) || ue.msg != "" {
			fmt.Fprintln(os.Stderr, "groupwire:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError is a command-line mistake; it exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

const usage = `groupwire: a TLS sidecar for replicated groups

Usage:
  groupwire run     --config FILE --member NAME   run one member's sidecar
  groupwire check   --config FILE [--member NAME] validate a cluster file and print the plan
  groupwire capture --config FILE --member NAME   install a drop-in member's capture rules and exit (an init step)
  groupwire status  --admin ADDR | --config FILE --member NAME
                                                  the health of every pair of one member; exit 1 if one is down
  groupwire certs   init|issue|revoke|crl|bundle  a development CA, member certificates, CA bundles
  groupwire demo                                  run a three-member group on this machine
  groupwire version                               print the version

Run "groupwire COMMAND -h" for a command's flags.
`

// run is the whole program behind main: it returns instead of exiting.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runSidecar(ctx, rest, stdout, stderr)
	case "check":
		return runCheck(rest, stdout, stderr)
	case "certs":
		return runCerts(rest, stdout, stderr)
	case "status":
		return runStatus(ctx, rest, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "capture":
		return runCapture(ctx, rest, stdout, stderr)
	case "member": // hidden: a stand-in database member for deploy/ examples
		return runMember(ctx, rest, stdout, stderr)
	case "pause": // hidden: holds a network namespace for deploy/compose
		return runPause(ctx)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "groupwire", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// newFlagSet returns a flag set that reports errors as usage errors.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("groupwire "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args and refuses stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return usageError{}
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// envOr returns the environment variable key, or def when it is unset.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}
