package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/netns"
)

var (
	ferretOnce sync.Once
	ferretBin  string
	ferretErr  error
)

// ferretCached reports whether the FerretDB test server is already built.
func ferretCached() bool {
	bin, err := ferretPath()
	if err != nil {
		return false
	}
	_, err = os.Stat(bin)
	return err == nil
}

// PrepareFerretDB builds the MongoDB-wire test server now unless it is
// cached, saying so on progress first: the first build takes a minute or two.
func PrepareFerretDB(progress io.Writer) error {
	if ferretCached() {
		return nil
	}
	start := time.Now()
	fmt.Fprint(progress, "  building the MongoDB-wire test server (FerretDB 1.24, a module of its own) once; a minute or two the first time ... ")
	_, err := ferretBinary()
	if err == nil {
		fmt.Fprintf(progress, "done (%.0fs)\n", time.Since(start).Seconds())
	} else {
		fmt.Fprintln(progress, "failed")
	}
	return err
}

// ferretPath is where the build for the current sources is cached.
func ferretPath() (string, error) {
	src := filepath.Join(Root(), "internal", "testkit", "ferretdb")
	h := sha256.New()
	for _, f := range []string{"main.go", "go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "sslconn-test", "ferretdb-test-"+hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// ferretBinary builds internal/ferretdb (its own module) once, into the user
// cache keyed by its sources, so only the first run pays the build (~1 min).
func ferretBinary() (string, error) {
	ferretOnce.Do(func() {
		src := filepath.Join(Root(), "internal", "testkit", "ferretdb")
		bin, err := ferretPath()
		if err != nil {
			ferretErr = err
			return
		}
		if _, err := os.Stat(bin); err == nil {
			ferretBin = bin
			return
		}
		// Test packages run in parallel and may build at once: each builds
		// to its own name and renames, so none execs a half-written file.
		tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
		cmd := exec.Command("go", "build", "-o", tmp, ".")
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			ferretErr = fmt.Errorf("build FerretDB test server: %v\n%s", err, out)
			return
		}
		if err := os.Rename(tmp, bin); err != nil {
			ferretErr = err
			return
		}
		ferretBin = bin
	})
	return ferretBin, ferretErr
}

// StartFerretDB starts the MongoDB-wire test server (FerretDB, SQLite
// backend). Like Redis it has separate ports: Port is plaintext (closed when
// TLS.Force), TLSPort is TLS (closed when TLS.Off). TLS.Versions serves TLS
// through a terminator limited to those versions; TLS.ClientAuth requires
// client certificates from TLS.CA.
func StartFerretDB(t TLS) (*Server, error) { return StartFerretDBOn(nil, t) }

// StartFerretDBOn is StartFerretDB inside test host h (nil: loopback).
func StartFerretDBOn(h *netns.Host, t TLS) (*Server, error) {
	bin, err := ferretBinary()
	if err != nil {
		return nil, err
	}
	s, err := newServer("ferretdb", true, t)
	if err != nil {
		return nil, err
	}
	s.onHost(h, 27017, 27018)
	if err := os.MkdirAll(filepath.Join(s.Dir, "data"), 0o755); err != nil {
		return nil, err
	}
	s.argv = func(s *Server) ([]string, []string, error) {
		args := []string{bin, "-data", filepath.Join(s.Dir, "data")}
		t := s.TLS
		tlsPort := s.TLSPort
		if t.OnPlainPort && !t.Off {
			tlsPort = s.Port
		} else if t.Off || !t.Force {
			args = append(args, "-listen", s.Addr(s.Port))
		}
		if !t.Off {
			args = append(args, "-tls", s.Addr(tlsPort), "-cert", t.Cert.Cert, "-key", t.Cert.Key)
			if t.ClientAuth {
				args = append(args, "-ca", t.CA)
			}
			if t.Versions != "" {
				args = append(args, "-tls-versions", t.Versions)
			}
		}
		return args, nil, nil
	}
	s.ready = func(s *Server) error {
		if s.TLS.OnPlainPort && !s.TLS.Off {
			return dialReady(s.Addr(s.Port))
		}
		if s.TLS.Off || !s.TLS.Force {
			if err := dialReady(s.Addr(s.Port)); err != nil {
				return err
			}
		}
		if !s.TLS.Off {
			return dialReady(s.Addr(s.TLSPort))
		}
		return nil
	}
	register(s)
	if err := s.startFresh(); err != nil {
		return nil, err
	}
	return s, nil
}
