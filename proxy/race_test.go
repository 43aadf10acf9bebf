//go:build race

package proxy_test

// raceEnabled scales the big transfers down under the race detector, which
// slows the relay about tenfold.
const raceEnabled = true
