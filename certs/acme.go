package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/rs/zerolog"
)

// ACMEConfig says where and how the member's certificate is obtained over
// ACME (through certmagic), as the cluster file's tls.acme block does.
type ACMEConfig struct {
	// Directory is the ACME directory URL of the CA (https), for example
	// step-ca's https://ca.internal:9000/acme/acme/directory.
	Directory string
	// CARoot is a PEM file of the CA certificates trusted for the
	// directory's own TLS; empty means the system roots.
	CARoot string
	// Email is the ACME account's contact. It is required: without it
	// certmagic prompts for one on the terminal and reads stdin.
	Email string
	// Name is the one name the certificate is for (DNS name or IP
	// address), normally the member's identity. certmagic manages one
	// name per certificate.
	Name string
	// Storage is the folder where the account, keys and certificates are
	// kept, so that a restart reuses them without asking the CA.
	Storage string
	// RenewCheckInterval is how often certmagic checks whether the
	// certificate is due for renewal; zero derives it from the
	// certificate's lifetime (see renewCheckInterval).
	RenewCheckInterval time.Duration
	// Profile names an ACME profile offered by the CA; empty lets the CA
	// choose.
	Profile string
	// HTTPListen is host:port where the HTTP-01 challenge is answered
	// while a certificate is being obtained; empty means ":80". The CA
	// must reach it as http://Name/ (port 80) or be told to skip it.
	HTTPListen string
	// ObtainTimeout bounds Obtain when its context has no earlier
	// deadline; zero means DefaultACMEObtainTimeout.
	ObtainTimeout time.Duration
}

// DefaultACMEObtainTimeout bounds the startup obtain of an ACME
// certificate when ACMEConfig.ObtainTimeout is zero.
const DefaultACMEObtainTimeout = 2 * time.Minute

// Validate reports the first field that cannot work, naming it as the
// cluster file's acme block does.
func (c ACMEConfig) Validate() error {
	u, err := url.Parse(c.Directory)
	switch {
	case c.Directory == "":
		return errors.New("acme directory: not set (the CA's ACME directory URL)")
	case err != nil:
		return fmt.Errorf("acme directory %q: %w", c.Directory, err)
	case u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("acme directory %q: want an https:// URL (ACME runs over TLS)", c.Directory)
	}
	if c.Name == "" {
		return errors.New("acme names: no name for the certificate")
	}
	if !certmagic.SubjectQualifiesForCert(c.Name) {
		return fmt.Errorf("acme names: %q cannot be the subject of a certificate", c.Name)
	}
	if c.Storage == "" {
		return errors.New("acme storage: not set (a folder for the ACME account, keys and certificates)")
	}
	if c.Email == "" {
		return errors.New("acme email: not set (the ACME account's contact address)")
	}
	if !strings.Contains(c.Email, "@") {
		return fmt.Errorf("acme email: %q is not an email address", c.Email)
	}
	if c.RenewCheckInterval < 0 {
		return fmt.Errorf("acme renew_check_interval: must not be negative, got %s", c.RenewCheckInterval)
	}
	if c.HTTPListen != "" {
		if _, _, err := splitListen(c.HTTPListen); err != nil {
			return fmt.Errorf("acme http_listen %q: %w", c.HTTPListen, err)
		}
	}
	return nil
}

// splitListen splits host:port and checks the port.
func splitListen(hostport string) (string, int, error) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number in 1-65535", p)
	}
	return host, port, nil
}

// ACME obtains the member's certificate from an ACME CA through certmagic,
// renews it before it expires, and hands every new certificate to the
// attached stores (Store.SetCertificate), so that the next handshake of
// every channel using them presents it. Obtain gets the first certificate
// (from storage, or from the CA) before the sidecar serves; Run keeps it
// renewed. The certmagic cache that each of them uses is theirs alone and
// stopped before they return.
type ACME struct {
	cfg   ACMEConfig
	log   zerolog.Logger
	roots *x509.CertPool // for the directory's TLS; nil: system roots
	nudge chan struct{}  // a certificate was obtained: look at storage now

	mu     sync.Mutex
	stores []*Store
	cur    *tls.Certificate // the certificate handed to the stores
}

// NewACME checks cfg and reads its ca_root; nothing is obtained yet. log
// receives certmagic's messages and one line per certificate handed over.
func NewACME(cfg ACMEConfig, log zerolog.Logger) (*ACME, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &ACME{cfg: cfg, log: log.With().Str("acme", cfg.Name).Logger(), nudge: make(chan struct{}, 1)}
	if cfg.CARoot != "" {
		data, err := readFile(cfg.CARoot, newDigester())
		if err != nil {
			return nil, fmt.Errorf("load acme ca_root %s: %w", cfg.CARoot, err)
		}
		cas, err := ParseCertificatesPEM(data)
		if err != nil {
			return nil, fmt.Errorf("load acme ca_root %s: %w", cfg.CARoot, err)
		}
		a.roots = x509.NewCertPool()
		for _, c := range cas {
			a.roots.AddCert(c)
		}
	}
	return a, nil
}

// Config returns the configuration given to NewACME.
func (a *ACME) Config() ACMEConfig { return a.cfg }

// Attach makes s receive every certificate from now on, and the current
// one at once if there is one. s must not use ssl_cert/ssl_key.
func (a *ACME) Attach(s *Store) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur != nil {
		if err := s.SetCertificate(a.cur); err != nil {
			return err
		}
	}
	a.stores = append(a.stores, s)
	return nil
}

// Certificate returns the certificate last handed to the stores, or nil.
func (a *ACME) Certificate() *tls.Certificate {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur
}

// Obtain loads the certificate from storage, or obtains it from the CA
// when storage has none or it is due for renewal, and hands it to the
// stores. It returns when that is done, or with an error naming the name
// and directory when ctx (bounded by ObtainTimeout) ends first.
func (a *ACME) Obtain(ctx context.Context) error {
	timeout := a.cfg.ObtainTimeout
	if timeout <= 0 {
		timeout = DefaultACMEObtainTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m := a.newMagic(a.renewCheckInterval(nil))
	defer m.cache.Stop()
	if err := m.cfg.ManageSync(ctx, []string{a.cfg.Name}); err != nil {
		return fmt.Errorf("acme: obtain certificate for %s from %s: %w", a.cfg.Name, a.cfg.Directory, err)
	}
	if err := a.refresh(ctx, m); err != nil {
		return fmt.Errorf("acme: obtain certificate for %s from %s: %w", a.cfg.Name, a.cfg.Directory, err)
	}
	return nil
}

// Run keeps the certificate renewed until ctx ends, then stops certmagic's
// maintenance and returns nil. It calls Obtain first when no certificate
// is in hand. Every renewal is handed to the stores as soon as certmagic
// reports it (and, as a backstop, when a periodic look at storage finds a
// newer certificate there, such as one another instance renewed).
func (a *ACME) Run(ctx context.Context) error {
	if a.Certificate() == nil {
		if err := a.Obtain(ctx); err != nil {
			return err
		}
	}
	interval := a.renewCheckInterval(a.Certificate().Leaf)
	m := a.newMagic(interval)
	defer m.cache.Stop()
	a.log.Info().Dur("renew_check_interval", interval).Time("not_after", a.Certificate().Leaf.NotAfter).Msg("acme: keeping the certificate renewed")

	tick := time.NewTicker(interval)
	defer tick.Stop()
	managed := false
	failures := 0
	for {
		if !managed {
			// Puts the certificate in certmagic's cache, whose maintenance
			// renews it; fails only when it cannot be loaded or obtained.
			if err := m.cfg.ManageSync(ctx, []string{a.cfg.Name}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				a.log.Error().Err(err).Str("directory", a.cfg.Directory).Dur("retry_in", interval).Msg("acme: cannot manage the certificate; the current one stays in use")
			} else {
				managed = true
			}
		}
		var retry <-chan time.Time
		if err := a.refresh(ctx, m); err != nil && ctx.Err() == nil {
			// certmagic writes the key and the certificate one after the
			// other, so a read in between finds a pair that does not
			// match; that passes within moments.
			failures++
			lvl := zerolog.DebugLevel
			if failures >= refreshRetries {
				lvl = zerolog.WarnLevel
			}
			a.log.WithLevel(lvl).Err(err).Int("attempt", failures).Msg("acme: reading the certificate from storage")
			if failures < refreshRetries {
				retry = time.After(refreshRetryDelay)
			}
		} else {
			failures = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.nudge:
		case <-tick.C:
		case <-retry:
		}
	}
}

// A failed read of the stored certificate is retried refreshRetries-1
// times refreshRetryDelay apart before it is logged as a warning and left
// to the next renewal check.
const (
	refreshRetries    = 5
	refreshRetryDelay = 200 * time.Millisecond
)

// renewCheckInterval is the configured interval, or one twentieth of the
// certificate's lifetime (certmagic's guidance is below a ninth with its
// default renewal window of a third), kept within 1s and certmagic's
// default of 10 minutes. Without a certificate it is the default.
func (a *ACME) renewCheckInterval(leaf *x509.Certificate) time.Duration {
	if a.cfg.RenewCheckInterval > 0 {
		return a.cfg.RenewCheckInterval
	}
	if leaf == nil {
		return certmagic.DefaultRenewCheckInterval
	}
	return min(max(leaf.NotAfter.Sub(leaf.NotBefore)/20, time.Second), certmagic.DefaultRenewCheckInterval)
}

// refresh reads the certificate from certmagic's storage and hands it to
// the stores if it is newer than the one in hand.
func (a *ACME) refresh(ctx context.Context, m *magic) error {
	cert, err := m.load(ctx, a.cfg.Name)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur != nil && !newer(cert.Leaf, a.cur.Leaf) {
		return nil
	}
	var errs []error
	for _, s := range a.stores {
		if err := s.SetCertificate(cert); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	a.cur = cert
	a.log.Info().Str("serial", formatSerial(cert.Leaf.SerialNumber)).Time("not_before", cert.Leaf.NotBefore).
		Time("not_after", cert.Leaf.NotAfter).Int("stores", len(a.stores)).Msg("acme: certificate in use")
	return nil
}

// newer reports whether c was issued after old: a later NotBefore, or the
// same with a later NotAfter. Storage may briefly hold an older
// certificate than the one certmagic just reported (files are written one
// by one), and that must never replace a newer one.
func newer(c, old *x509.Certificate) bool {
	if c.Equal(old) {
		return false
	}
	if !c.NotBefore.Equal(old.NotBefore) {
		return c.NotBefore.After(old.NotBefore)
	}
	return c.NotAfter.After(old.NotAfter)
}

// onEvent receives certmagic's events: a new certificate in storage nudges
// Run, a failure is logged.
func (a *ACME) onEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtained":
		a.log.Info().Any("renewal", data["renewal"]).Any("issuer", data["issuer"]).Msg("acme: certificate obtained")
		signal(a.nudge)
	case "cert_failed":
		err, _ := data["error"].(error)
		a.log.Error().Err(err).Any("renewal", data["renewal"]).Any("remaining", data["remaining"]).Msg("acme: obtaining the certificate failed; certmagic retries")
	}
	return nil
}
