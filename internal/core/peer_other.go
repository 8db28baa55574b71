//go:build !linux

package core

import "net"

// peerProbe reads the TCP state where the kernel tells it (Linux); here
// PeerClosed peeks instead.
type peerProbe struct{}

func newPeerProbe(net.Conn) *peerProbe { return nil }

func (*peerProbe) closed() (error, bool) { return nil, false }
