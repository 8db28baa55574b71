//go:build !unix

package testenv

import "os/exec"

// setProcessGroup does nothing: Windows (and the other systems without
// process groups in package syscall) start the server as a plain child.
func setProcessGroup(*exec.Cmd) {}

// terminate ends the server: Windows has no SIGTERM to send a console
// process, so this is the same as kill.
func terminate(cmd *exec.Cmd) error { return cmd.Process.Kill() }

// kill ends the server process (TerminateProcess on Windows).
func kill(cmd *exec.Cmd) error { return cmd.Process.Kill() }

// freezeSupported tells whether Freeze can stop a server: not here.
const freezeSupported = false
