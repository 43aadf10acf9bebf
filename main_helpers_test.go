package main

import (
	"net"
	"time"

	"github.com/groupwire/groupwire/certs/devpki"
	"github.com/groupwire/groupwire/proxy/localgroup"
)

func devpkiLeaf(name string) devpki.LeafTemplate {
	return devpki.LeafTemplate{CommonName: name, DNSNames: []string{name}}
}

func dialMember(g *localgroup.Group, member, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(g.Member(member).IP)}}
	return d.Dial("tcp", addr)
}
