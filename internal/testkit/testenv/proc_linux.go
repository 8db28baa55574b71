package testenv

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the server in its own process group, so Stop reaches
// the children it forks too, and has the kernel kill it if the test binary
// dies first.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// terminate asks the server's process group to shut down (SIGTERM).
func terminate(cmd *exec.Cmd) error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }

// kill ends the server's process group at once (SIGKILL).
func kill(cmd *exec.Cmd) error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

// signal sends sig to the server's process group.
func signal(cmd *exec.Cmd, sig syscall.Signal) error { return syscall.Kill(-cmd.Process.Pid, sig) }

// freezeSupported tells whether Freeze can stop a server.
const freezeSupported = true
