package matrix

import (
	"context"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// deadPeerMeter is a MeterProvider that counts sslconn.dead_peers and
// records nothing else: the OpenTelemetry SDK lives in a module of its own
// (internal/integration), and silent servers need these test hosts.
type deadPeerMeter struct {
	noop.MeterProvider
	n atomic.Int64
}

func (p *deadPeerMeter) Meter(string, ...metric.MeterOption) metric.Meter {
	return deadPeerCounting{p: p}
}

type deadPeerCounting struct {
	noop.Meter
	p *deadPeerMeter
}

func (m deadPeerCounting) Int64Counter(name string, opts ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	if name == "sslconn.dead_peers" {
		return deadPeerCounter{n: &m.p.n}, nil
	}
	return m.Meter.Int64Counter(name, opts...)
}

type deadPeerCounter struct {
	noop.Int64Counter
	n *atomic.Int64
}

func (c deadPeerCounter) Add(_ context.Context, incr int64, _ ...metric.AddOption) { c.n.Add(incr) }

// countDeadPeers returns the count of servers the process finds silent
// from now on, as sslconn.dead_peers records them: a silent server is
// found per process, so a Config of the test's own, with this provider,
// sees what the adapter's clients find.
func countDeadPeers(t *testing.T) func() int64 {
	t.Helper()
	p := new(deadPeerMeter)
	if _, err := core.Resolve(core.Spec{}, sslconn.WithMeterProvider(p)); err != nil {
		t.Fatal(err)
	}
	return p.n.Load
}
