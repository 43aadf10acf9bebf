// Package testutil holds the helpers that tests in several packages share:
// a log buffer that a test reads while a process or sidecar writes to it,
// the groupwire binary built once per test process, a bounded wait for a
// condition, and the folder of a module the tests need files from. It
// imports only the standard library, so every package of the module, certs
// included, may use it. It is for tests only.
package testutil
