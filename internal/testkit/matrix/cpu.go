package matrix

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture Go runs on.
const clockTicks = 100

// ProcessCPU is the CPU time, user and system, of the process pid so far
// (Linux: /proc/PID/stat).
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The fields after the command's closing parenthesis: state is the
	// first, utime and stime the 12th and 13th.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

var ssPid = regexp.MustCompile(`pid=(\d+)`)

// ListenerPID is the process listening on TCP port (Linux, with ss).
func ListenerPID(port int) (int, error) {
	out, err := exec.Command("ss", "-Htlnp", "sport = :"+strconv.Itoa(port)).Output()
	if err != nil {
		return 0, err
	}
	m := ssPid.FindSubmatch(out)
	if m == nil {
		return 0, errors.New("no process listens on port " + strconv.Itoa(port))
	}
	return strconv.Atoi(string(m[1]))
}
