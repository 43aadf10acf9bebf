package proxy

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/groupwire/groupwire/proxy/capture"
	"github.com/groupwire/groupwire/proxy/cluster"
)

// dropIn is drop-in mode's running state: the capture rules in force and
// the capture listener the rules redirect the member's peer connections to.
type dropIn struct {
	rules atomic.Pointer[capture.Rules]
	ln    *net.TCPListener
}

// captureRules resolves c's targets and, when the sidecar manages the
// rules, puts them in force.
func captureRules(ctx context.Context, c *cluster.CapturePlan) (*capture.Rules, error) {
	if c.Rules == cluster.CaptureRulesManaged {
		return capture.Apply(ctx, c, net.DefaultResolver)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rules, err := capture.Resolve(rctx, c, net.DefaultResolver)
	if err != nil {
		return nil, err
	}
	// capture_rules: external: someone else installs them; serving without
	// them would let the member talk plaintext, so their absence is fatal.
	present, err := capture.Present()
	if err == nil && !present {
		err = fmt.Errorf("capture: capture_rules is external, but nftables table inet %s is not installed in this network namespace (install what `groupwire check` prints first)", capture.Table)
	}
	return rules, err
}

// startDropIn, in drop-in mode, puts the capture rules in force and binds
// the capture listener, before the sidecar reports ready. It returns nil
// in loopback mode.
func (s *Sidecar) startDropIn(ctx context.Context, plan *cluster.Plan) (*dropIn, error) {
	if plan.Capture == nil {
		return nil, nil
	}
	rules, err := captureRules(ctx, plan.Capture)
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
		remote := c.RemoteAddr().String()
		_ = c.SetLinger(0)
		c.Close()
		s.metrics.outboundRefused.WithLabelValues("unmapped").Inc()
		if s.logRate.allow("unmapped", remote, time.Now()) {
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
	rules, err := captureRules(context.Background(), plan.Capture)
	if err != nil {
		return err
	}
	s.dropIn.rules.Store(rules)
	return nil
}

// serveDropIn starts drop-in mode's capture, when the plan asks for it,
// and its accept loop.
func (s *Sidecar) serveDropIn(ctx context.Context, plan *cluster.Plan) error {
	d, err := s.startDropIn(ctx, plan)
	if err != nil || d == nil {
		return err
	}
	s.reloadMu.Lock()
	s.dropIn = d
	s.reloadMu.Unlock()
	s.wg.Go(func() {
		s.acceptLoop(ctx, d.ln, func(c *net.TCPConn) { s.serveCaptured(ctx, d, c) })
	})
	return nil
}
