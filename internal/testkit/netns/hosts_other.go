//go:build !linux

package netns

import "errors"

var errNotLinux = errors.New("netns: test hosts need Linux")

// SetName is Linux-only, like the hosts it names.
func SetName(name, ip string) error { return errNotLinux }

// RemoveName is Linux-only.
func RemoveName(name string) error { return errNotLinux }

func lockMachine() (func(), error) { return nil, errNotLinux }
