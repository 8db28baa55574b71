package netns

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// hostsFile is where SetName writes; tests of other packages may write it
// at the same time, so every change holds an exclusive flock.
const hostsFile = "/etc/hosts"

// tag marks the lines SetName writes, with the owner's pid after it.
const tag = "# sslconn-test "

// SetName makes name resolve to ip through /etc/hosts, replacing what an
// earlier SetName said for it. Go's resolver notices within about 5 s.
func SetName(name, ip string) error {
	return editHosts(func(lines []string) []string {
		lines = dropName(lines, name)
		return append(lines, fmt.Sprintf("%s %s %s%d", ip, name, tag, os.Getpid()))
	})
}

// RemoveName undoes SetName.
func RemoveName(name string) error {
	return editHosts(func(lines []string) []string { return dropName(lines, name) })
}

func dropName(lines []string, name string) []string {
	out := lines[:0]
	for _, l := range lines {
		f := strings.Fields(l)
		if strings.Contains(l, tag) && len(f) >= 2 && f[1] == name {
			continue
		}
		out = append(out, l)
	}
	return out
}

// editHosts rewrites /etc/hosts in place (it may be a bind mount, which a
// rename would not replace), dropping lines of test binaries that are gone.
func editHosts(edit func([]string) []string) error {
	hostMu.Lock()
	defer hostMu.Unlock()
	f, err := os.OpenFile(hostsFile, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	b, err := os.ReadFile(hostsFile)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	kept := lines[:0]
	for _, l := range lines {
		if i := strings.Index(l, tag); i >= 0 {
			if pid, err := strconv.Atoi(strings.TrimSpace(l[i+len(tag):])); err == nil && !alive(pid) {
				continue
			}
		}
		kept = append(kept, l)
	}
	out := strings.Join(edit(kept), "\n") + "\n"
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(out), 0)
	return err
}

// lockFile serialises choosing addresses across test binaries.
const lockFile = "/run/sslconn-netns.lock"

// lockMachine takes the machine-wide lock New chooses addresses under.
func lockMachine() (unlock func(), err error) {
	f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
