package certs

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// loadKeyPair reads ssl_cert (a chain, leaf first) and ssl_key and checks
// that the key belongs to the leaf. Both empty gives nil; one without the
// other is an error.
func loadKeyPair(certFile, keyFile string, d *digester) (*tls.Certificate, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case keyFile == "":
		return nil, loadError("ssl_cert", certFile, errors.New("ssl_key is not set (ssl_cert and ssl_key go together)"))
	case certFile == "":
		return nil, loadError("ssl_key", keyFile, errors.New("ssl_cert is not set (ssl_cert and ssl_key go together)"))
	}
	certPEM, err := readFile(certFile, d)
	if err != nil {
		return nil, loadError("ssl_cert", certFile, err)
	}
	chain, err := ParseCertificatesPEM(certPEM)
	if err != nil {
		return nil, loadError("ssl_cert", certFile, err)
	}
	keyPEM, err := readFile(keyFile, d)
	if err != nil {
		return nil, loadError("ssl_key", keyFile, err)
	}
	key, err := parsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, loadError("ssl_key", keyFile, err)
	}
	pub, ok := chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, loadError("ssl_key", keyFile, fmt.Errorf("private key does not match certificate %s (%s)", certFile, chain[0].Subject))
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, &LoadError{Option: "ssl_key", Path: keyFile, With: "ssl_cert " + certFile, Err: err}
	}
	if pair.Leaf == nil {
		pair.Leaf = chain[0]
	}
	return &pair, nil
}

// parsePrivateKeyPEM parses the first "... PRIVATE KEY" block of data in
// PKCS #8, PKCS #1 (RSA) or SEC 1 (EC) form.
func parsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM PRIVATE KEY block found")
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if strings.Contains(block.Type, "ENCRYPTED") || block.Headers["Proc-Type"] != "" {
			return nil, errors.New("private key is encrypted; groupwire needs an unencrypted key")
		}
		return parsePrivateKeyDER(block.Bytes)
	}
}

func parsePrivateKeyDER(der []byte) (crypto.Signer, error) {
	var key any
	var err error
	if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
		if k, err1 := x509.ParsePKCS1PrivateKey(der); err1 == nil {
			key, err = k, nil
		} else if k, err2 := x509.ParseECPrivateKey(der); err2 == nil {
			key, err = k, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key (tried PKCS #8, PKCS #1, SEC 1): %w", err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", key)
	}
	return s, nil
}
