package main

import (
	"context"
	"math/big"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
	"github.com/groupwire/groupwire/internal/localgroup"
)

// revokedMember is the member whose certificate is revoked and re-issued.
const revokedMember = "mysql-3"

// reissueAfter is how long a revocation stands before a new certificate
// is issued to the revoked member.
const reissueAfter = 3 * time.Second

// drivePKI rotates every member's certificate every o.rotate and revokes
// revokedMember's every o.revoke, until ctx ends. It alone touches the
// group's PKI.
func drivePKI(ctx context.Context, g *localgroup.Group, o options, rep *report) {
	pki := g.CAs["group"]
	rotate := time.NewTicker(o.rotate)
	defer rotate.Stop()
	revoke := time.NewTicker(o.revoke)
	defer revoke.Stop()
	var reissue <-chan time.Time
	// Every certificate the revoked member has held since its last
	// revocation: live links may still run on any of them, and revoking a
	// compromised member revokes them all.
	held := []*big.Int{pki.Leaves[revokedMember].Cert.SerialNumber}
	issue := func(member string) {
		if err := pki.Issue(member, devpki.LeafTemplate{CommonName: member, DNSNames: []string{member}}); err != nil {
			rep.note("issue %s: %v", member, err)
		} else if member == revokedMember {
			held = append(held, pki.Leaves[member].Cert.SerialNumber)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-rotate.C:
			for _, m := range g.Members {
				if m.Name != revokedMember || reissue == nil {
					issue(m.Name)
				}
			}
			rep.rotated()
		case <-revoke.C:
			if reissue != nil {
				continue
			}
			if err := pki.RevokeSerials(held...); err != nil {
				rep.note("revoke: %v", err)
				continue
			}
			rep.revokedAt(time.Now())
			held = nil
			reissue = time.After(reissueAfter)
		case <-reissue:
			issue(revokedMember)
			rep.reissuedAt(time.Now())
			reissue = nil
		}
	}
}
