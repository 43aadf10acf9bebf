// Package devpki builds a small development PKI with crypto/x509: root and
// intermediate CAs, member (leaf) certificates and CRLs, all with ECDSA
// P-256 keys. It backs the `groupwire certs` and `groupwire demo` commands
// and lets tests of every package put real key material on disk.
//
// The in-memory API (NewRootCA, CA.NewIntermediate, CA.Issue, CA.CRL,
// CA.CRLv1) makes certificates and CRLs; the directory API (Init, Issue,
// Revoke, OpenDir) keeps a CA folder with a state.json for the CLI.
//
// Nothing here is meant for production trust: keys are written unencrypted.
package devpki
