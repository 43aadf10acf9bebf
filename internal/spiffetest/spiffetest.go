// Package spiffetest runs a SPIFFE Workload API for tests: the
// FetchX509SVID stream of go-spiffe's proto/spiffe/workload service on a
// unix socket, serving whatever response the test sets and pushing each
// new one at once to every open stream, as a SPIRE agent does on rotation.
// It is not for production.
package spiffetest

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/groupwire/groupwire/certs/devpki"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Server is a fake Workload API on a unix socket.
type Server struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	Path string // the socket
	Addr string // unix://Path, for tls.spiffe.socket

	grpc *grpc.Server
	done chan struct{}

	mu      sync.Mutex
	resp    *workload.X509SVIDResponse // nil: nothing to send yet
	changed chan struct{}              // closed and replaced by Set
}

// Listen serves the Workload API on a unix socket at path, with nothing to
// send until Set; Close stops it.
func Listen(path string) (*Server, error) {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("spiffetest: %w", err)
	}
	s := &Server{Path: path, Addr: "unix://" + path, grpc: grpc.NewServer(), done: make(chan struct{}), changed: make(chan struct{})}
	workload.RegisterSpiffeWorkloadAPIServer(s.grpc, s)
	go func() {
		defer close(s.done)
		_ = s.grpc.Serve(ln)
	}()
	return s, nil
}

// SocketPath returns a socket path in a new short folder: unix socket
// paths are limited to 108 bytes, which test folders can pass.
func SocketPath(name string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "gw-spiffe")
	if err != nil {
		return "", nil, err
	}
	return filepath.Join(dir, name), func() { os.RemoveAll(dir) }, nil
}

// Close stops the server, ending every stream, and waits for it.
func (s *Server) Close() {
	s.grpc.Stop()
	<-s.done
}

// Set makes resp what every stream is sent, now and on connecting.
func (s *Server) Set(resp *workload.X509SVIDResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resp = resp
	close(s.changed)
	s.changed = make(chan struct{})
}

// FetchX509SVID streams the response in force, and each new one. Like a
// SPIRE agent it refuses a call without the security header.
func (s *Server) FetchX509SVID(_ *workload.X509SVIDRequest, stream workload.SpiffeWorkloadAPI_FetchX509SVIDServer) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	for {
		s.mu.Lock()
		resp, changed := s.resp, s.changed
		s.mu.Unlock()
		if resp != nil {
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}

// Issue issues an X.509-SVID for id from ca and returns the Workload
// API's answer holding it with bundle, and the leaf; it fails tb when it
// cannot.
func Issue(tb testing.TB, ca *devpki.CA, id string, bundle ...*x509.Certificate) (*workload.X509SVIDResponse, *devpki.Leaf) {
	tb.Helper()
	u, err := url.Parse(id)
	if err != nil {
		tb.Fatalf("spiffetest: %v", err)
	}
	leaf, err := ca.Issue(devpki.LeafTemplate{URIs: []*url.URL{u}})
	if err != nil {
		tb.Fatalf("spiffetest: issue %s: %v", id, err)
	}
	resp, err := Response(id, leaf, bundle...)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, leaf
}

// Response is a Workload API answer holding one X.509-SVID for id: the
// leaf's chain and key, and the trust domain's bundle.
func Response(id string, leaf *devpki.Leaf, bundle ...*x509.Certificate) (*workload.X509SVIDResponse, error) {
	block, _ := pem.Decode(leaf.KeyPEM)
	if block == nil {
		return nil, errors.New("spiffetest: leaf key is not PEM")
	}
	var chain []byte
	for rest := leaf.ChainPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		chain = append(chain, b.Bytes...)
	}
	var anchors []byte
	for _, c := range bundle {
		anchors = append(anchors, c.Raw...)
	}
	return &workload.X509SVIDResponse{Svids: []*workload.X509SVID{{
		SpiffeId: id, X509Svid: chain, X509SvidKey: block.Bytes, Bundle: anchors,
	}}}, nil
}
