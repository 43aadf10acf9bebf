// Package tlsopt parses MySQL's and OpenSSL's TLS option values into what
// crypto/tls takes: ssl_cipher (OpenSSL's cipher-string grammar, evaluated
// over a table generated from the real `openssl ciphers`), tls_ciphersuites,
// tls_version and tls_kex. It also tells which suites fit a key. It owns no
// policy: which mode checks what is package transport's, and where each
// value comes from in the cluster file is package cluster's.
package tlsopt
