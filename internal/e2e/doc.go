// Package e2e holds the end-to-end tests of the groupwire command: they
// build the binary once and run it as real processes (and in-process
// sidecars) on loopback addresses, with real TLS, real files and real
// signals, and check what an operator would see: links, refusals and
// their reasons, reloads, health, metrics and the `check` transcript. It
// has no code of its own; everything it tests is reached through the
// binary or the packages' exported API.
package e2e
