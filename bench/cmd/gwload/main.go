// Command gwload is the load tool of groupwire's benchmark: "serve" is the
// sink/echo/source server that stands in for a member's service, "run"
// drives one measurement through a proxy pair (or directly) and prints one
// JSON result, and "report" turns the collected results into RESULTS.md.
package main

import (
	"fmt"
	"os"
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
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gwload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gwload serve|run|report [flags] (-h for flags)")
	os.Exit(2)
}
