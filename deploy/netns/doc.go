// Package netns holds groupwire's deployment tests across hosts: each
// member and its sidecar run in a Linux network namespace of their own,
// made by the test, with the real groupwire binary, so that DNS moves,
// partitions and revocation are seen as a real group would see them. The
// package has no code of its own outside its tests.
package netns
