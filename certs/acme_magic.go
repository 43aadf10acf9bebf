package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/caddyserver/certmagic"
)

// magic is one certmagic setup: a cache of its own (whose maintenance
// goroutine runs until cache.Stop), a config bound to it and the ACME
// issuer. The pitfalls it avoids are recorded in NOTES.md §1: no package
// default config or cache, OCSP stapling off, an explicit profile, and
// the certificate read from storage rather than through GetCertificate
// (which can start an ARI update goroutine that nobody stops).
type magic struct {
	cache  *certmagic.Cache
	cfg    *certmagic.Config
	issuer *certmagic.ACMEIssuer
}

// newMagic builds a certmagic setup for a's configuration whose cache
// checks for renewal every interval. The caller must Stop the cache.
func (a *ACME) newMagic(interval time.Duration) *magic {
	logger := newZapLogger(a.log)
	m := &magic{}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return m.cfg, nil },
		RenewCheckInterval: interval,
		// Stapling is off (below); this only keeps the ticker quiet.
		OCSPCheckInterval: 24 * time.Hour,
		Capacity:          16,
		Logger:            logger,
	})
	m.cfg = certmagic.New(m.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: a.cfg.Storage},
		// Peers often send no SNI (and never for an IP identity).
		DefaultServerName: a.cfg.Name,
		OCSP:              certmagic.OCSPConfig{DisableStapling: true},
		OnEvent:           a.onEvent,
		ShouldEmitFunc: func(event string) bool {
			return event == "cert_obtained" || event == "cert_failed"
		},
		Logger: logger,
	})
	host, port := "", certmagic.HTTPChallengePort
	if a.cfg.HTTPListen != "" {
		host, port, _ = splitListen(a.cfg.HTTPListen) // checked by Validate
	}
	m.issuer = certmagic.NewACMEIssuer(m.cfg, certmagic.ACMEIssuer{
		CA:           a.cfg.Directory,
		Email:        a.cfg.Email,
		Agreed:       true,
		TrustedRoots: a.roots,
		Profile:      a.cfg.Profile,
		// HTTP-01 only: it works for DNS names and IP addresses alike
		// (RFC 8738), and TLS-ALPN-01 would need port 443.
		DisableTLSALPNChallenge: true,
		ListenHost:              host,
		AltHTTPPort:             port,
		Logger:                  logger,
	})
	m.cfg.Issuers = []certmagic.Issuer{m.issuer}
	return m
}

// load reads the certificate chain and key of name from certmagic's
// storage.
func (m *magic) load(ctx context.Context, name string) (*tls.Certificate, error) {
	issuerKey := m.issuer.IssuerKey()
	certKey := certmagic.StorageKeys.SiteCert(issuerKey, name)
	certPEM, err := m.cfg.Storage.Load(ctx, certKey)
	if err != nil {
		return nil, fmt.Errorf("load %s from acme storage: %w", certKey, err)
	}
	keyKey := certmagic.StorageKeys.SitePrivateKey(issuerKey, name)
	keyPEM, err := m.cfg.Storage.Load(ctx, keyKey)
	if err != nil {
		return nil, fmt.Errorf("load %s from acme storage: %w", keyKey, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load %s with %s from acme storage: %w", certKey, keyKey, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("load %s from acme storage: %w", certKey, err)
		}
	}
	return &pair, nil
}
