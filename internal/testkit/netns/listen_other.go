//go:build !linux

package netns

import "net"

// Listen is Linux-only, like the hosts.
func (h *Host) Listen(network, addr string) (net.Listener, error) { return nil, errNotLinux }
