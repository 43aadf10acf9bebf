package transport

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/groupwire/groupwire/certs"
)

// Reason names why an inbound connection did not become a link. The set is
// small and fixed: the values are the reason label of
// groupwire_inbound_refused_total and the reason field of the sidecar's
// "link refused" log line, and operators alert on them.
type Reason string

// The reasons an acceptor tells apart, in the order a connection meets
// them. The REFUSE codes' names (RefuseCode.String) are reasons too.
const (
	ReasonClosedEarly      Reason = "closed early"          // the dialer closed or reset before a first byte
	ReasonNotGroupwire     Reason = "not groupwire"         // the first byte is neither TLS nor HELLO
	ReasonHandshakeTimeout Reason = "handshake timeout"     // no TLS handshake within handshake_timeout
	ReasonTLSProtocol      Reason = "tls protocol error"    // a malformed or unacceptable TLS handshake
	ReasonNoClientCert     Reason = "no client certificate" // the ssl_mode needs one; none was sent
	ReasonUnknownAuthority Reason = "unknown authority"     // the chain leads to no CA in ssl_ca
	ReasonExpired          Reason = "expired"               // a certificate of the chain is expired or not yet valid
	ReasonRevoked          Reason = "revoked"               // a CRL revokes a certificate of the chain
	ReasonNameMismatch     Reason = "name mismatch"         // VERIFY_IDENTITY: the certificate names no member
	ReasonBadCertificate   Reason = "bad certificate"       // any other failure of the chain's checks
	ReasonHelloTimeout     Reason = "hello timeout"         // no HELLO within handshake_timeout
	ReasonOversizedFrame   Reason = "oversized frame"       // a frame header announced more than MaxFrameBody
	ReasonLimit            Reason = "limit"                 // a limit of the limits: block (the proxy's)
)

// Reasons lists every reason, REFUSE codes included, as the metric's label
// set is documented.
func Reasons() []Reason {
	out := []Reason{ReasonClosedEarly, ReasonNotGroupwire, ReasonHandshakeTimeout, ReasonTLSProtocol,
		ReasonNoClientCert, ReasonUnknownAuthority, ReasonExpired, ReasonRevoked, ReasonNameMismatch,
		ReasonBadCertificate, ReasonHelloTimeout, ReasonOversizedFrame}
	for code := RefuseModeMismatch; int(code) < len(refuseNames); code++ {
		out = append(out, Reason(code.String()))
	}
	return append(out, ReasonLimit)
}

// FailedError is what Serve returns when a connection failed before HELLO
// was checked, without a refusal the dialer could read: the Reason says
// why, Err says it in full.
type FailedError struct {
	Reason Reason
	Err    error
}

func (e *FailedError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FailedError) Unwrap() error { return e.Err }

// failed wraps err with the reason reasonFor gives it in stage.
func failed(stage acceptStage, err error) error {
	return &FailedError{Reason: reasonFor(stage, err), Err: err}
}

// acceptStage is how far an inbound connection got.
type acceptStage int

const (
	stageFirstByte acceptStage = iota
	stageTLS
	stageHello
)

// reasonFor classifies an error met in stage.
func reasonFor(stage acceptStage, err error) Reason {
	var nerr net.Error
	timeout := errors.As(err, &nerr) && nerr.Timeout()
	switch {
	case timeout && stage == stageHello:
		return ReasonHelloTimeout
	case timeout:
		return ReasonHandshakeTimeout
	case stage == stageFirstByte:
		return ReasonClosedEarly
	case stage == stageTLS:
		return certificateReason(err)
	case errors.Is(err, ErrFrameTooLarge):
		return ReasonOversizedFrame
	}
	return Reason(RefuseBadHello.String())
}

// certificateReason names a failed TLS handshake's cause: one of the
// certificate checks, or the protocol itself.
func certificateReason(err error) Reason {
	var revoked *certs.RevokedError
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var name *NameMismatchError
	switch {
	case errors.As(err, &revoked):
		return ReasonRevoked
	case errors.As(err, &unknown):
		return ReasonUnknownAuthority
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return ReasonExpired
	case errors.As(err, &name):
		return ReasonNameMismatch
	case errors.Is(err, ErrNoPeerCertificate) || noClientCertificate(err):
		return ReasonNoClientCert
	case errors.As(err, new(certificateError)):
		return ReasonBadCertificate // any other failure of the chain: a usage, a CRL missing or expired
	}
	return ReasonTLSProtocol
}

// noClientCertificate recognises crypto/tls's own refusal of a handshake
// without a client certificate (tls.RequireAnyClientCert), which it
// returns as bare text. TestHostileInputWhileStreaming fails if the text
// changes.
func noClientCertificate(err error) bool {
	return strings.Contains(err.Error(), "client didn't provide a certificate")
}

// certificateError marks a failure of the peer's chain, so that what the
// certs package refuses for reasons of its own (a CRL missing or past its
// nextUpdate, a key usage) is told from a failure of the TLS protocol.
type certificateError struct{ error }

func (e certificateError) Unwrap() error { return e.error }

// NameMismatchError is a VERIFY_IDENTITY failure of the handshake: the
// peer's certificate names no identity it may carry.
type NameMismatchError struct {
	Channel string
	Cert    string // the certificate's subject and names, as certName prints them
	Want    string // the identity wanted, or "" for any member of the group
}

func (e *NameMismatchError) Error() string {
	if e.Want == "" {
		return fmt.Sprintf("channel %s: VERIFY_IDENTITY: client certificate %s names no member of the group", e.Channel, e.Cert)
	}
	return fmt.Sprintf("channel %s: VERIFY_IDENTITY: peer certificate %s does not name %q", e.Channel, e.Cert, e.Want)
}
