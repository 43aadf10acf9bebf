package devpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// Object identifiers of the signature algorithms CRLv1 can use.
var (
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidEd25519         = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// The ASN.1 structures of RFC 5280 section 5.1, v1 subset: no version, no
// extensions anywhere.
type (
	certificateListV1 struct {
		TBS                asn1.RawValue
		SignatureAlgorithm algorithmIdentifier
		SignatureValue     asn1.BitString
	}
	tbsCertListV1 struct {
		Signature  algorithmIdentifier
		Issuer     asn1.RawValue
		ThisUpdate time.Time
		NextUpdate time.Time       `asn1:"optional"`
		Revoked    []revokedCertV1 `asn1:"optional"`
	}
	revokedCertV1 struct {
		Serial         *big.Int
		RevocationDate time.Time
	}
	algorithmIdentifier struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.RawValue `asn1:"optional"`
	}
)

// CRLv1 makes a version 1 CRL (no version field, no extensions, so no CRL
// number) signed by ca, as old OpenSSL setups and MySQL test data have. Go
// only creates v2 CRLs, so it is built by hand with encoding/asn1; it exists
// to test parsers' v1 fallback. A zero thisUpdate means now; a zero
// nextUpdate leaves the optional nextUpdate field out. It returns a PEM
// "X509 CRL" block.
func (ca *CA) CRLv1(revoked []*big.Int, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	der, err := ca.crlV1(revoked, thisUpdate, nextUpdate)
	if err != nil {
		return nil, fmt.Errorf("devpki: v1 CRL of %q: %w", ca.Cert.Subject.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}

func (ca *CA) crlV1(revoked []*big.Int, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	if ca.Key == nil {
		return nil, fmt.Errorf("CA has no private key")
	}
	if thisUpdate.IsZero() {
		thisUpdate = time.Now()
	}
	thisUpdate = asn1Time(thisUpdate)
	if !nextUpdate.IsZero() {
		nextUpdate = asn1Time(nextUpdate)
		if !nextUpdate.After(thisUpdate) {
			return nil, fmt.Errorf("nextUpdate %s is not after thisUpdate %s", nextUpdate.Format(time.RFC3339), thisUpdate.Format(time.RFC3339))
		}
	}
	alg, hash, err := signatureAlgorithm(ca.Key)
	if err != nil {
		return nil, err
	}
	tbs := tbsCertListV1{
		Signature:  alg,
		Issuer:     asn1.RawValue{FullBytes: ca.Cert.RawSubject},
		ThisUpdate: thisUpdate,
		NextUpdate: nextUpdate,
	}
	for _, s := range revoked {
		if s == nil || s.Sign() < 0 {
			return nil, fmt.Errorf("revoked serial %v is not a non-negative number", s)
		}
		tbs.Revoked = append(tbs.Revoked, revokedCertV1{Serial: s, RevocationDate: thisUpdate})
	}
	tbsDER, err := asn1.Marshal(tbs)
	if err != nil {
		return nil, fmt.Errorf("marshal tbsCertList: %w", err)
	}
	signed := tbsDER
	if hash != 0 {
		sum := sha256.Sum256(tbsDER)
		signed = sum[:]
	}
	sig, err := ca.Key.Sign(rand.Reader, signed, hash)
	if err != nil {
		return nil, fmt.Errorf("sign tbsCertList: %w", err)
	}
	der, err := asn1.Marshal(certificateListV1{
		TBS:                asn1.RawValue{FullBytes: tbsDER},
		SignatureAlgorithm: alg,
		SignatureValue:     asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	})
	if err != nil {
		return nil, fmt.Errorf("marshal certificateList: %w", err)
	}
	return der, nil
}

// signatureAlgorithm picks the algorithm identifier and hash for key:
// SHA-256 with ECDSA or RSA PKCS #1 v1.5, or pure Ed25519.
func signatureAlgorithm(key crypto.Signer) (algorithmIdentifier, crypto.Hash, error) {
	switch key.Public().(type) {
	case *ecdsa.PublicKey:
		return algorithmIdentifier{Algorithm: oidECDSAWithSHA256}, crypto.SHA256, nil
	case *rsa.PublicKey:
		return algorithmIdentifier{Algorithm: oidSHA256WithRSA, Parameters: asn1.NullRawValue}, crypto.SHA256, nil
	case ed25519.PublicKey:
		return algorithmIdentifier{Algorithm: oidEd25519}, 0, nil
	default:
		return algorithmIdentifier{}, 0, fmt.Errorf("unsupported key type %T", key.Public())
	}
}

// asn1Time puts t in UTC at whole seconds, as UTCTime and GeneralizedTime
// require in DER.
func asn1Time(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }
