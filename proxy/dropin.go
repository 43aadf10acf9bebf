package proxy

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"sync/atomic"

	"github.com/groupwire/groupwire/proxy/capture"
	"github.com/groupwire/groupwire/proxy/cluster"
)

// dropIn is drop-in mode's running state: the capture rules in force and
// the capture listener the rules redirect the member's peer connections to.
type dropIn struct {
	rules atomic.Pointer[capture.Rules]
	ln    *net.TCPListener
}

// startDropIn, in drop-in mode, puts the capture rules in force and binds
// the capture listener, before the sidecar reports ready. It returns nil
// in loopback mode.
func (s *Sidecar) startDropIn(ctx context.Context, plan *cluster.Plan) (*dropIn, error) {
	if plan.Capture == nil {
		return nil, nil
	}
	rules, err := capture.Enforce(ctx, plan.Capture, net.DefaultResolver)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", rules.Listen())
	if err != nil {
		return nil, fmt.Errorf("capture listener: %w", err)
	}
	d := &dropIn{ln: ln.(*net.TCPListener)}
	d.rules.Store(rules)
	s.log.Info().Str("capture", rules.Listen()).Int("targets", len(rules.Targets)).Str("rules", plan.Capture.Rules).
		Msg("drop-in mode: the member's peer connections are captured")
	return d, nil
}

// serveCaptured maps a captured connection to its peer and channel by its
// original destination, and serves it as a connection to that route's
// outbound listener would be. One that maps to nothing is reset.
func (s *Sidecar) serveCaptured(ctx context.Context, d *dropIn, c *net.TCPConn) {
	dst, err := capture.OriginalDst(c)
	var route *outboundRoute
	if err == nil {
		if t, ok := d.rules.Load().Lookup(dst); ok {
			route = s.current().routes[pairKey{t.Member, t.Channel}]
		} else {
			err = fmt.Errorf("original destination %s is no member's channel address", dst)
		}
	}
	if route == nil {
		if remote, log := s.resetRefused(c, s.metrics.outboundRefused, "unmapped"); log {
			s.log.Warn().Str("remote", remote).Err(err).Msg("captured connection refused: no route")
		}
		return
	}
	s.admitConn(ctx, c, route)
}

// reloadDropIn puts a reloaded plan's capture rules in force when they
// changed. The caller holds reloadMu.
func (s *Sidecar) reloadDropIn(old, plan *cluster.Plan) error {
	if s.dropIn == nil || reflect.DeepEqual(old.Capture, plan.Capture) {
		return nil
	}
	rules, err := capture.Enforce(context.Background(), plan.Capture, net.DefaultResolver)
	if err != nil {
		return err
	}
	s.dropIn.rules.Store(rules)
	return nil
}
