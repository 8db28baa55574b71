package core

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/sslconn/sslconn/internal/tlsinfo"
	"github.com/sslconn/sslconn/sslconn"
)

// scope names the library to OpenTelemetry.
const scope = "github.com/sslconn/sslconn"

// Attribute keys: OpenTelemetry's semantic conventions where they have
// one, sslconn.* for the rest. None carries a password, a DSN or a
// certificate: addresses, modes, kinds, versions and subjects only.
const (
	keySystem     = attribute.Key("db.system.name")
	keyAddress    = attribute.Key("server.address")
	keyPort       = attribute.Key("server.port")
	keyErrorType  = attribute.Key("error.type")
	keyTLSVersion = attribute.Key("tls.protocol.version")
	keyMode       = attribute.Key("sslconn.mode")
	keyOutcome    = attribute.Key("sslconn.outcome")
	keyAttempt    = attribute.Key("sslconn.attempt")
	keyAttempts   = attribute.Key("sslconn.attempts")
	keySource     = attribute.Key("sslconn.certificate.source")
	keySubject    = attribute.Key("sslconn.certificate.subject")
)

// telemetry is a Config's OpenTelemetry instrumentation: the core calls it
// where an outcome is known (Retry, a plan's attempt, a handshake, a
// certificate check, a silent server). A nil *telemetry records nothing,
// at the cost of a nil check.
type telemetry struct {
	system attribute.KeyValue
	tracer trace.Tracer
	m      *meters
	// down holds, per address, when its current outage began: the first
	// failed connection attempt that a retry followed. The next success
	// there is a recovery, timed from it.
	down sync.Map // addr -> time.Time
}

// serverInfo is an address's attributes, as the metrics and spans use them.
type serverInfo struct {
	attrs    []attribute.KeyValue // db.system.name, server.address, server.port
	set      attribute.Set        // the same
	mu       sync.Mutex
	outcomes map[outcomeKey]attribute.Set // sslconn.connections' sets
}

type outcomeKey struct {
	mode             sslconn.Mode
	outcome, version string
}

// serverKey names a serverInfo in meters.servers.
type serverKey struct{ system, addr string }

// maxServers bounds meters.servers; past it, an address's attributes are
// built for each connection.
const maxServers = 4096

// server is addr's attributes, made once per provider for every Config
// that uses it, so that neither a connection nor a new client builds any.
func (t *telemetry) server(addr string) *serverInfo {
	k := serverKey{t.system.Value.AsString(), addr}
	if si, ok := t.m.servers.Load(k); ok {
		return si.(*serverInfo)
	}
	attrs := serverAttrs([]attribute.KeyValue{t.system}, addr)
	si := &serverInfo{attrs: attrs, set: attribute.NewSet(attrs...), outcomes: map[outcomeKey]attribute.Set{}}
	if t.m.nservers.Add(1) > maxServers {
		t.m.nservers.Add(-1)
		return si
	}
	v, loaded := t.m.servers.LoadOrStore(k, si)
	if loaded {
		t.m.nservers.Add(-1)
	}
	return v.(*serverInfo)
}

// outcome is the attribute set of a connection made (or failed) in mode.
func (si *serverInfo) outcome(k outcomeKey) attribute.Set {
	si.mu.Lock()
	defer si.mu.Unlock()
	set, ok := si.outcomes[k]
	if !ok {
		attrs := append(append([]attribute.KeyValue(nil), si.attrs...), keyMode.String(k.mode.String()), keyOutcome.String(k.outcome))
		if k.version != "" {
			attrs = append(attrs, keyTLSVersion.String(k.version))
		}
		set = attribute.NewSet(attrs...)
		si.outcomes[k] = set
	}
	return set
}

// newTelemetry is the instrumentation for s's providers, or otel's global
// ones (which record nothing until the application sets them).
func newTelemetry(s *settings) *telemetry {
	mp, tp := s.Meters, s.Tracers
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	system := s.Engine
	if system == "" {
		system = "other_sql"
	}
	return &telemetry{system: keySystem.String(system), tracer: tp.Tracer(scope), m: metersFor(mp)}
}

// meters are the instruments of one MeterProvider, made once for every
// Config that uses it: a provider keeps what it is given (otel's global
// one, every instrument and callback), so a process that makes many
// Configs (database/sql's driver.Open makes one per connection) must not
// add instruments per Config.
type meters struct {
	createTime  metric.Float64Histogram
	recovery    metric.Float64Histogram
	connections metric.Int64Counter
	plaintext   metric.Int64Counter
	retries     metric.Int64Counter
	deadPeers   metric.Int64Counter
	certs       certSet
	// servers caches each address's attributes (see telemetry.server).
	servers  sync.Map // serverKey -> *serverInfo
	nservers atomic.Int32
}

var (
	metersMu  sync.Mutex
	metersOf  = map[metric.MeterProvider]*meters{}
	allMeters []*meters // every provider's, for dead peers (found per process)
)

func metersFor(mp metric.MeterProvider) *meters {
	metersMu.Lock()
	defer metersMu.Unlock()
	// A provider of a type that cannot key a map gets its own instruments.
	keyed := reflect.TypeOf(mp).Comparable()
	if m := metersOf[mp]; keyed && m != nil {
		return m
	}
	meter := mp.Meter(scope)
	m := &meters{certs: certSet{m: map[certKey]time.Time{}, seen: map[[2]string]map[string]struct{}{}}}
	m.createTime, _ = meter.Float64Histogram("db.client.connection.create_time", metric.WithUnit("s"),
		metric.WithDescription("The time it took to create a new connection: TLS, retries and PREFERRED's fallback included."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 180))
	m.connections, _ = meter.Int64Counter("sslconn.connections", metric.WithUnit("{connection}"),
		metric.WithDescription("New connections by mode and outcome: tls, plaintext, or the error kind."))
	m.plaintext, _ = meter.Int64Counter("sslconn.plaintext_fallbacks", metric.WithUnit("{connection}"),
		metric.WithDescription("PREFERRED connections that went plaintext: the server offered no TLS."))
	m.retries, _ = meter.Int64Counter("sslconn.retries", metric.WithUnit("{retry}"),
		metric.WithDescription("Retries of a connection attempt, or of an operation known not to have been sent."))
	m.recovery, _ = meter.Float64Histogram("sslconn.recovery.duration", metric.WithUnit("s"),
		metric.WithDescription("Recoveries: from the first failed connection attempt of an outage (a restart, a switchover) to the next connection made."),
		metric.WithExplicitBucketBoundaries(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 180, 300))
	m.deadPeers, _ = meter.Int64Counter("sslconn.dead_peers", metric.WithUnit("{server}"),
		metric.WithDescription("Servers found silent under an open connection (nothing answered, nothing reset)."))
	gauge, err := meter.Float64ObservableGauge("sslconn.certificate.time_left", metric.WithUnit("s"),
		metric.WithDescription("Seconds until each CA and server certificate seen expires (negative: expired)."))
	if err == nil {
		_, _ = meter.RegisterCallback(m.certs.observe(gauge), gauge)
	}
	if keyed {
		metersOf[mp] = m
	}
	allMeters = append(allMeters, m)
	return m
}

// serverAttrs appends server.address and server.port of addr to out, if
// addr is "host:port" (a client's retries of an operation name no server).
func serverAttrs(out []attribute.KeyValue, addr string) []attribute.KeyValue {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return out
	}
	out = append(out, keyAddress.String(host))
	if p, err := strconv.Atoi(port); err == nil {
		out = append(out, keyPort.Int(p))
	}
	return out
}

// connectKey finds a new connection's record in its context.
type connectKey struct{}

// connectRecord is one new connection in the making (a Retry): its span,
// and what its attempts noted of the connection made.
type connectRecord struct {
	t      *telemetry
	span   trace.Span
	start  time.Time
	mode   sslconn.Mode // configured
	addr   string
	server *serverInfo
	// recording: the connection's span is recorded, and so its attempts
	// and handshakes get spans (with nothing installed, they cost none).
	recording bool
	attempts  int          // Retry's loop only
	made      atomic.Int32 // the mode the connection was made in; 0: not noted
	version   atomic.Uint32
}

// connecting starts the record of a new connection to addr in mode, with
// its span under ctx's.
func (t *telemetry) connecting(ctx context.Context, mode sslconn.Mode, addr string) (context.Context, *connectRecord) {
	if t == nil {
		return ctx, nil
	}
	r := &connectRecord{t: t, start: time.Now(), mode: mode, addr: addr, server: t.server(addr)}
	ctx, r.span = t.tracer.Start(ctx, "sslconn.connect", trace.WithSpanKind(trace.SpanKindClient))
	if r.recording = r.span.IsRecording(); r.recording {
		r.span.SetAttributes(r.server.attrs...)
		r.span.SetAttributes(keyMode.String(mode.String()))
	}
	return context.WithValue(ctx, connectKey{}, r), r
}

func recordOf(ctx context.Context) *connectRecord {
	r, _ := ctx.Value(connectKey{}).(*connectRecord)
	return r
}

// attempt starts the span of attempt n.
func (r *connectRecord) attempt(ctx context.Context, n int) (context.Context, trace.Span) {
	if r == nil {
		return ctx, nil
	}
	r.attempts = n
	if !r.recording {
		return ctx, nil
	}
	ctx, span := r.t.tracer.Start(ctx, "sslconn.attempt")
	span.SetAttributes(keyAttempt.Int(n))
	return ctx, span
}

// attempted ends an attempt's span with its outcome.
func (r *connectRecord) attempted(span trace.Span, err error) {
	if span == nil {
		return
	}
	endSpan(span, err)
}

// endSpan ends span, marked with err's kind if it failed: never err's
// text, which may name what the caller would rather keep (a token's
// provider, a user name).
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		k := errorKind(err)
		span.SetAttributes(keyErrorType.String(k))
		span.SetStatus(codes.Error, k)
	}
	span.End()
}

// errorKind is err's sentinel name, or "error" for an untyped error.
func errorKind(err error) string {
	if k := KindName(err); k != "" {
		return k
	}
	return "error"
}

// noteMade records, on ctx's new connection if it has a record, one step
// of a plan (a Connector's attempt in one mode): the mode it made its
// connection in, or its error, as an event of the attempt's span.
func noteMade(ctx context.Context, mode sslconn.Mode, err error) {
	r := recordOf(ctx)
	if r == nil {
		return
	}
	if err == nil {
		r.made.Store(int32(mode))
	}
	if span := trace.SpanFromContext(ctx); r.recording && span.IsRecording() {
		attrs := []attribute.KeyValue{keyMode.String(mode.String())}
		if err != nil {
			attrs = append(attrs, keyErrorType.String(errorKind(err)))
		}
		span.AddEvent("sslconn.plan_step", trace.WithAttributes(attrs...))
	}
}

// NoteTLSVersion records, on ctx's new connection (the ctx a Connector's
// attempt was given), the TLS version its handshake agreed: for an
// adapter whose driver runs the handshake. Without a record it does
// nothing.
func NoteTLSVersion(ctx context.Context, version uint16) {
	if r := recordOf(ctx); r != nil {
		r.version.Store(uint32(version))
	}
}

// noteConn records the connection Dial's attempt made.
func noteConn(ctx context.Context, c *Conn) {
	r := recordOf(ctx)
	if r == nil {
		return
	}
	if c.tls == nil {
		r.made.Store(int32(sslconn.Disabled))
		return
	}
	r.made.Store(int32(c.mode))
	r.version.Store(uint32(c.tls.ConnectionState().Version))
}

// done ends the record with the new connection's outcome: err, the error
// Retry returns, or what the attempts noted.
func (r *connectRecord) done(ctx context.Context, err error) {
	if r == nil {
		return
	}
	t := r.t
	outcome, version := "", ""
	mode := sslconn.Mode(r.made.Load())
	if mode == 0 {
		mode = r.mode // an attempt that noted nothing: its mode is the configured one
	}
	switch {
	case err != nil:
		outcome = errorKind(err)
	case mode == sslconn.Disabled:
		outcome = "plaintext"
	default:
		outcome = "tls"
		if v := r.version.Load(); v != 0 {
			version = tlsVersion(uint16(v))
		}
	}
	t.m.connections.Add(ctx, 1, metric.WithAttributeSet(r.server.outcome(outcomeKey{r.mode, outcome, version})))
	if r.span.IsRecording() {
		r.span.SetAttributes(keyOutcome.String(outcome), keyAttempts.Int(r.attempts))
		if version != "" {
			r.span.SetAttributes(keyTLSVersion.String(version))
		}
	}
	if err == nil {
		now := time.Now()
		server := metric.WithAttributeSet(r.server.set)
		t.m.createTime.Record(ctx, now.Sub(r.start).Seconds(), server)
		if outcome == "plaintext" && r.mode == sslconn.Preferred {
			t.m.plaintext.Add(ctx, 1, server)
			r.span.AddEvent("sslconn.plaintext_fallback")
		}
		if since, ok := t.down.LoadAndDelete(r.addr); ok {
			t.m.recovery.Record(ctx, now.Sub(since.(time.Time)).Seconds(), server)
		}
	}
	endSpan(r.span, err)
}

// tlsVersion is the semantic conventions' tls.protocol.version ("1.3").
func tlsVersion(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	}
	return tlsinfo.VersionName(v)
}

// retrying records a retry after err at addr; connecting, that it is a
// connection attempt's, which opens an outage if none is open.
func (t *telemetry) retrying(ctx context.Context, addr string, err error, connecting bool) {
	if t == nil {
		return
	}
	if connecting {
		t.down.LoadOrStore(addr, time.Now())
	}
	attrs := append(append([]attribute.KeyValue(nil), t.server(addr).attrs...), keyErrorType.String(errorKind(err)))
	t.m.retries.Add(ctx, 1, metric.WithAttributes(attrs...))
}

// handshake starts the span of a TLS handshake in mode, if it is part of
// a new connection whose span is recorded.
func (t *telemetry) handshake(ctx context.Context, mode sslconn.Mode) (context.Context, trace.Span) {
	if t == nil {
		return ctx, nil
	}
	if r := recordOf(ctx); r == nil || !r.recording {
		return ctx, nil
	}
	ctx, span := t.tracer.Start(ctx, "sslconn.handshake")
	span.SetAttributes(keyMode.String(mode.String()))
	return ctx, span
}

// handshaken ends a handshake's span.
func handshaken(span trace.Span, tc *tls.Conn, err error) {
	if span == nil {
		return
	}
	if err == nil && tc != nil && span.IsRecording() {
		span.SetAttributes(keyTLSVersion.String(tlsVersion(tc.ConnectionState().Version)))
	}
	endSpan(span, err)
}

// seeCerts records certificates for the expiry gauge: source "ca" or
// "server", host the server's name ("" for the CA).
func (t *telemetry) seeCerts(source, host string, certs []*x509.Certificate) {
	t.m.certs.see(source, host, certs)
}

// deadPeerFound counts server, found silent, in every provider's meters:
// a silent server is found per process, not per Config.
func deadPeerFound(server string) {
	metersMu.Lock()
	all := allMeters
	metersMu.Unlock()
	if len(all) == 0 {
		return
	}
	set := metric.WithAttributeSet(attribute.NewSet(serverAttrs(nil, server)...))
	for _, m := range all {
		m.deadPeers.Add(context.Background(), 1, set)
	}
}

// certSet is the certificates seen, for the expiry gauge: one entry per
// source, server and subject, the latest seen (a renewed certificate
// replaces its predecessor).
type certSet struct {
	mu sync.Mutex
	m  map[certKey]time.Time // -> NotAfter
	// seen is, per source and host, the signatures of the certificates
	// in m.
	seen map[[2]string]map[string]struct{}
}

type certKey struct{ source, host, subject string }

func (s *certSet) see(source, host string, certs []*x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	host = tlsinfo.HostOnly(host)
	seen := s.seen[[2]string{source, host}]
	if seen == nil {
		seen = map[string]struct{}{}
		s.seen[[2]string{source, host}] = seen
	}
	for _, c := range certs {
		// Most handshakes show certificates seen before: a signature
		// is a cheap key, and their subjects need not be rendered again.
		if _, ok := seen[string(c.Signature)]; ok {
			continue
		}
		seen[string(c.Signature)] = struct{}{}
		s.m[certKey{source, host, c.Subject.String()}] = c.NotAfter
	}
}

func (s *certSet) observe(gauge metric.Float64ObservableGauge) metric.Callback {
	return func(_ context.Context, o metric.Observer) error {
		now := time.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		for k, notAfter := range s.m {
			attrs := []attribute.KeyValue{keySource.String(k.source), keySubject.String(k.subject)}
			if k.host != "" {
				attrs = append(attrs, keyAddress.String(k.host))
			}
			o.ObserveFloat64(gauge, notAfter.Sub(now).Seconds(), metric.WithAttributes(attrs...))
		}
		return nil
	}
}
