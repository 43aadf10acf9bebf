// Command gwload is the load tool of groupwire's benchmark: "serve" is the
// sink/echo/source server that stands in for a member's service, "run"
// drives one measurement through a proxy pair (or directly) and prints one
// JSON result, "report" turns the collected results into RESULTS.md, and
// "cpu" prints the host's busy CPU seconds and those of the process
// sessions it is given, for the shell scripts to take differences of.
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/groupwire/groupwire/bench/internal/procstat"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serveMain(os.Args[2:])
	case "run":
		err = runMain(os.Args[2:])
	case "report":
		err = reportMain(os.Args[2:])
	case "cpu":
		err = cpuMain(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gwload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gwload serve|run|report [flags] (-h for flags) | gwload cpu [SESSION...]")
	os.Exit(2)
}

// cpuMain is "gwload cpu SESSION...": one line, "HOST SESSIONS", the
// host's busy CPU seconds since boot (every CPU) and the CPU seconds of
// the given process sessions (0 when none is given).
func cpuMain(args []string) error {
	sids := make([]int, len(args))
	for i, a := range args {
		sid, err := strconv.Atoi(a)
		if err != nil {
			return fmt.Errorf("cpu: %q is not a session id", a)
		}
		sids[i] = sid
	}
	host, err := procstat.HostBusy()
	if err != nil {
		return err
	}
	us, err := procstat.UsageOf(sids)
	if err != nil {
		return err
	}
	sessions, _, _ := procstat.SumCPU(us)
	fmt.Printf("%.2f %.2f\n", host.Seconds(), sessions)
	return nil
}
