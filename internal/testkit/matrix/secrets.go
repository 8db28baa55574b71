package matrix

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Probe does one thing that may fail: parse a DSN, build a client, connect.
// It logs to log, and returns what it built (printed with %v, %+v, %#v and
// %s, as a user's log line would) and its error.
type Probe func(log *slog.Logger) (built []any, err error)

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ScanSecrets runs each probe with a debug-level logger (also installed as
// slog's default, for code that logs there) and fails if any secret shows
// in an error (Error, %v, %+v, %#v), in what the probe built printed every
// way fmt can, in a log record, or in a panic. Not parallel: it swaps the
// default logger.
func ScanSecrets(t *testing.T, secrets []string, probes map[string]Probe) {
	for name, probe := range probes {
		t.Run(name, func(t *testing.T) {
			var logs lockedBuffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			prev := slog.Default()
			slog.SetDefault(log)
			defer slog.SetDefault(prev)

			var texts []string
			func() {
				defer func() {
					if r := recover(); r != nil {
						texts = append(texts, fmt.Sprint(r))
						t.Errorf("panic: %v", redactAll(fmt.Sprint(r), secrets))
					}
				}()
				built, err := probe(log)
				if err != nil {
					texts = append(texts, err.Error(), fmt.Sprintf("%v|%+v|%#v|%s", err, err, err, err))
				}
				for _, b := range built {
					texts = append(texts, fmt.Sprintf("%v|%+v|%#v|%s", b, b, b, b))
				}
				if err == nil && len(built) == 0 {
					t.Errorf("the probe neither failed nor built anything: it checks nothing")
				}
			}()
			texts = append(texts, logs.String())
			for _, s := range secrets {
				for _, text := range texts {
					if s != "" && strings.Contains(text, s) {
						t.Errorf("secret %q... found in %q", s[:3], redactAll(text, secrets))
					}
				}
			}
		})
	}
}

func redactAll(s string, secrets []string) string {
	for _, x := range secrets {
		if x != "" {
			s = strings.ReplaceAll(s, x, "<SECRET>")
		}
	}
	return s
}
