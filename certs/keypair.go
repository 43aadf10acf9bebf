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
		return nil, fmt.Errorf("load ssl_cert %s: ssl_key is not set (ssl_cert and ssl_key go together)", certFile)
	case certFile == "":
		return nil, fmt.Errorf("load ssl_key %s: ssl_cert is not set (ssl_cert and ssl_key go together)", keyFile)
	}
	certPEM, err := readFile(certFile, d)
	if err != nil {
		return nil, fmt.Errorf("load ssl_cert %s: %w", certFile, err)
	}
	chain, err := ParseCertificatesPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("load ssl_cert %s: %w", certFile, err)
	}
	keyPEM, err := readFile(keyFile, d)
	if err != nil {
		return nil, fmt.Errorf("load ssl_key %s: %w", keyFile, err)
	}
	key, err := parsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load ssl_key %s: %w", keyFile, err)
	}
	pub, ok := chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("load ssl_key %s: private key does not match certificate %s (%s)", keyFile, certFile, chain[0].Subject)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load ssl_key %s with ssl_cert %s: %w", keyFile, certFile, err)
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
