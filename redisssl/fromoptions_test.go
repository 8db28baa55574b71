package redisssl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/testkit/matrix"
	"github.com/sslconn/sslconn/internal/testkit/testenv"
	"github.com/sslconn/sslconn/sslconn"
)

const optPassword = "Opt-Secret-pw9"

// fromOptions are the four FromOptions constructors, each given options
// that carry tc as their TLSConfig, optPassword and addr.
var fromOptions = map[string]func(addr string, tc *tls.Config, opts ...sslconn.Option) (redis.UniversalClient, error){
	"NewClientFromOptions": func(addr string, tc *tls.Config, opts ...sslconn.Option) (redis.UniversalClient, error) {
		return universal(NewClientFromOptions(&redis.Options{Addr: addr, Password: optPassword, TLSConfig: tc}, opts...))
	},
	"NewClusterClientFromOptions": func(addr string, tc *tls.Config, opts ...sslconn.Option) (redis.UniversalClient, error) {
		return universal(NewClusterClientFromOptions(&redis.ClusterOptions{Addrs: []string{addr}, Password: optPassword, TLSConfig: tc}, opts...))
	},
	"NewFailoverClientFromOptions": func(addr string, tc *tls.Config, opts ...sslconn.Option) (redis.UniversalClient, error) {
		return universal(NewFailoverClientFromOptions(&redis.FailoverOptions{SentinelAddrs: []string{addr}, MasterName: "mymaster",
			Password: optPassword, SentinelPassword: optPassword, TLSConfig: tc}, opts...))
	},
	"NewUniversalClientFromOptions": func(addr string, tc *tls.Config, opts ...sslconn.Option) (redis.UniversalClient, error) {
		return NewUniversalClientFromOptions(&redis.UniversalOptions{Addrs: []string{addr}, Password: optPassword, TLSConfig: tc}, opts...)
	},
}

func certPool(t testing.TB, file string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", file)
	}
	return pool
}

// TestFromOptionsTLS: the options' TLSConfig maps onto modes as rediss://
// does, its fields are read, not dropped, a mode that contradicts it is
// ErrInvalidOption naming both, for every FromOptions constructor, and the
// caller's TLSConfig is not changed.
func TestFromOptionsTLS(t *testing.T) {
	certs := testenv.GetCerts(t)
	pool := certPool(t, certs.CA)
	tests := []struct {
		name string
		tc   *tls.Config
		opts []sslconn.Option
		want sslconn.Mode
		says []string // in the Config's String
		err  []string // an ErrInvalidOption naming these
	}{
		{name: "no TLSConfig", want: sslconn.Preferred},
		{name: "no TLSConfig, a CA", opts: []sslconn.Option{sslconn.WithCAFile(certs.CA)}, want: sslconn.VerifyCA},
		{name: "TLSConfig", tc: &tls.Config{}, want: sslconn.VerifyIdentity},
		{name: "TLSConfig read", tc: &tls.Config{RootCAs: pool, ServerName: "cache.internal", MinVersion: tls.VersionTLS13},
			want: sslconn.VerifyIdentity, says: []string{`server-name="cache.internal"`, "tls=TLSv1.3", "RootCAs"}},
		{name: "InsecureSkipVerify", tc: &tls.Config{InsecureSkipVerify: true}, want: sslconn.Required},
		{name: "options override", tc: &tls.Config{ServerName: "cache.internal"},
			opts: []sslconn.Option{sslconn.WithServerName("other.internal"), sslconn.WithMode(sslconn.VerifyCA)},
			want: sslconn.VerifyCA, says: []string{`server-name="other.internal"`}},
		{name: "TLSConfig and PREFERRED", tc: &tls.Config{}, opts: []sslconn.Option{sslconn.WithMode(sslconn.Preferred)}, want: sslconn.Preferred},
		{name: "InsecureSkipVerify and VERIFY_CA", tc: &tls.Config{InsecureSkipVerify: true},
			opts: []sslconn.Option{sslconn.WithMode(sslconn.VerifyCA)}, err: []string{"InsecureSkipVerify", "sslconn.WithMode(sslconn.VerifyCA)"}},
		{name: "InsecureSkipVerify and VERIFY_IDENTITY", tc: &tls.Config{InsecureSkipVerify: true},
			opts: []sslconn.Option{sslconn.WithMode(sslconn.VerifyIdentity)}, err: []string{"InsecureSkipVerify", "sslconn.WithMode(sslconn.VerifyIdentity)"}},
		{name: "TLSConfig and DISABLED", tc: &tls.Config{},
			opts: []sslconn.Option{sslconn.WithMode(sslconn.Disabled)}, err: []string{"TLSConfig", "sslconn.WithMode(sslconn.Disabled)"}},
	}
	addr := matrix.ClosedAddr(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before tls.Config
			if tt.tc != nil {
				before = *tt.tc.Clone()
			}
			// The reading, as the constructors resolve it.
			cfg, err := core.Resolve(core.Spec{TLS: tt.tc}, tt.opts...)
			if tt.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Mode() != tt.want {
					t.Errorf("mode %v, want %v", cfg.Mode(), tt.want)
				}
				for _, s := range tt.says {
					if !strings.Contains(cfg.String(), s) {
						t.Errorf("%s does not say %s", cfg, s)
					}
				}
			}
			for name, construct := range fromOptions {
				t.Run(name, func(t *testing.T) {
					c, err := construct(addr, tt.tc, append([]sslconn.Option{sslconn.WithRetryBudget(-1)}, tt.opts...)...)
					if tt.err == nil {
						if err != nil {
							t.Fatal(err)
						}
						c.Close()
						return
					}
					if c != nil {
						t.Errorf("a client (%T) with the error", c)
					}
					if !errors.Is(err, sslconn.ErrInvalidOption) {
						t.Fatalf("err = %v, want ErrInvalidOption", err)
					}
					for _, s := range tt.err {
						if !strings.Contains(err.Error(), s) {
							t.Errorf("%q does not name %s", err, s)
						}
					}
					if strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), optPassword) {
						t.Errorf("password in %v", err)
					}
				})
			}
			if tt.tc != nil && (tt.tc.ServerName != before.ServerName || tt.tc.InsecureSkipVerify != before.InsecureSkipVerify ||
				tt.tc.MinVersion != before.MinVersion || tt.tc.RootCAs != before.RootCAs) {
				t.Errorf("the caller's TLSConfig was changed")
			}
		})
	}
}

// TestFromOptionsNil: nil options are an error, not a panic.
func TestFromOptionsNil(t *testing.T) {
	check := func(name string, c any, err error) {
		t.Helper()
		if !errors.Is(err, sslconn.ErrInvalidOption) || !strings.Contains(err.Error(), "nil") {
			t.Errorf("%s(nil): %v, want ErrInvalidOption", name, err)
		}
		if !reflect.ValueOf(c).IsNil() {
			t.Errorf("%s(nil) returned a client", name)
		}
	}
	c, err := NewClientFromOptions(nil)
	check("NewClientFromOptions", c, err)
	cc, err := NewClusterClientFromOptions(nil)
	check("NewClusterClientFromOptions", cc, err)
	fc, err := NewFailoverClientFromOptions(nil)
	check("NewFailoverClientFromOptions", fc, err)
	uc, err := NewUniversalClientFromOptions(nil)
	if uc != nil || !errors.Is(err, sslconn.ErrInvalidOption) {
		t.Errorf("NewUniversalClientFromOptions(nil): %v %v", uc, err)
	}
}

// TestFromOptionsKeeps: the caller's options are copied, never changed;
// what the caller set is kept, and what they left zero gets the package's
// defaults (no re-sent commands, a dial timeout covering the retry budget,
// the dialer's own retries).
func TestFromOptionsKeeps(t *testing.T) {
	addr := matrix.ClosedAddr(t)
	mnc := &maintnotifications.Config{Mode: maintnotifications.ModeEnabled, RelaxedTimeout: 7 * time.Second}
	mncBefore := *mnc
	tc := &tls.Config{ServerName: "localhost"}
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}
	o := &redis.Options{Addr: addr, Password: optPassword, TLSConfig: tc, Dialer: dial, Protocol: 3, MaintNotificationsConfig: mnc, PoolSize: 7}
	before := *o
	c, err := NewClientFromOptions(o, sslconn.WithRetryBudget(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if o.TLSConfig != before.TLSConfig || o.Dialer == nil || o.MaxRetries != 0 || o.DialTimeout != 0 || o.DialerRetries != 0 ||
		o.MaintNotificationsConfig != mnc || !reflect.DeepEqual(*mnc, mncBefore) || tc.ServerName != "localhost" {
		t.Fatalf("the caller's options were changed: %+v", o)
	}
	got := c.Options()
	if got.MaxRetries != 0 || got.DialerRetries != 1 || got.DialTimeout <= 10*time.Second || got.TLSConfig != nil || got.PoolSize != 7 || got.Protocol != 3 {
		t.Errorf("defaults: MaxRetries %d (want 0: none), DialerRetries %d, DialTimeout %v, TLSConfig %v, PoolSize %d, Protocol %d",
			got.MaxRetries, got.DialerRetries, got.DialTimeout, got.TLSConfig, got.PoolSize, got.Protocol)
	}
	if m := got.MaintNotificationsConfig; m.Mode != maintnotifications.ModeEnabled || m.RelaxedTimeout != 7*time.Second ||
		m.EndpointType != maintnotifications.EndpointTypeInternalFQDN {
		t.Errorf("maintenance notifications: %+v, want the caller's, with an FQDN endpoint (TLS)", m)
	}

	// What the caller set wins.
	c2, err := NewClientFromOptions(&redis.Options{Addr: addr, MaxRetries: 5, DialTimeout: 3 * time.Second}, sslconn.WithRetryBudget(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := c2.Options(); got.MaxRetries != 5 || got.DialTimeout != 3*time.Second {
		t.Errorf("MaxRetries %d, DialTimeout %v: the caller's were 5 and 3s", got.MaxRetries, got.DialTimeout)
	}

	// A cluster's NewClient is wrapped, not replaced; its options are not changed.
	var built atomic.Int32
	co := &redis.ClusterOptions{Addrs: []string{addr}, NewClient: func(o *redis.Options) *redis.Client {
		built.Add(1)
		return redis.NewClient(o)
	}}
	cc, err := NewClusterClientFromOptions(co, sslconn.WithRetryBudget(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = cc.Ping(ctx).Err() // nobody listens: the node client is built all the same
	if built.Load() == 0 {
		t.Error("the caller's NewClient was not used")
	}
	if co.Dialer != nil || co.MaxRetries != 0 || co.DialerRetries != 0 {
		t.Errorf("the caller's cluster options were changed: %+v", co)
	}
}

// TestMaintConfig: the user's maintenance-notification settings are kept;
// only an endpoint type left to auto-detection is detected as go-redis does
// under TLS, in the modes that may encrypt.
func TestMaintConfig(t *testing.T) {
	resolve := func(m sslconn.Mode) *core.Config {
		cfg, err := core.Resolve(core.Spec{}, sslconn.WithMode(m))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	const addr = "127.0.0.1:6380"
	verified, plain := resolve(sslconn.VerifyIdentity), resolve(sslconn.Disabled)
	if got := maintConfig(nil, addr, plain); got != nil {
		t.Errorf("DISABLED, nil: %+v, want nil (go-redis's default)", got)
	}
	if got := maintConfig(nil, addr, verified); got == nil || got.Mode != "" || got.EndpointType != maintnotifications.EndpointTypeInternalFQDN {
		t.Errorf("VERIFY_IDENTITY, nil: %+v, want go-redis's default mode with an internal FQDN endpoint", got)
	}
	off := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	if got := maintConfig(off, addr, verified); got != off {
		t.Errorf("disabled by the user: %+v", got)
	}
	ip := &maintnotifications.Config{Mode: maintnotifications.ModeEnabled, EndpointType: maintnotifications.EndpointTypeInternalIP}
	if got := maintConfig(ip, addr, verified); got != ip {
		t.Errorf("an endpoint type set by the user: %+v", got)
	}
	auto := &maintnotifications.Config{Mode: maintnotifications.ModeAuto, EndpointType: maintnotifications.EndpointTypeAuto, HandoffTimeout: time.Second}
	got := maintConfig(auto, "8.8.8.8:6380", verified)
	if got == auto || got.EndpointType != maintnotifications.EndpointTypeExternalFQDN || got.HandoffTimeout != time.Second ||
		auto.EndpointType != maintnotifications.EndpointTypeAuto {
		t.Errorf("auto: %+v (the user's now %+v)", got, auto)
	}
}

// TestURLMaintNotifications: the URL constructors leave go-redis's default
// (auto: on where the server supports it) instead of switching
// maintenance notifications off.
func TestURLMaintNotifications(t *testing.T) {
	c, err := NewClient("rediss://:"+optPassword+"@localhost:6380/0", sslconn.WithRetryBudget(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if m := c.Options().MaintNotificationsConfig; m.Mode != maintnotifications.ModeAuto || m.EndpointType != maintnotifications.EndpointTypeInternalFQDN {
		t.Errorf("%+v, want auto with an FQDN endpoint", m)
	}
}

// TestUniversalFromOptions: the client go-redis's NewUniversalClient would
// choose, and the caller's Addrs left as they were.
func TestUniversalFromOptions(t *testing.T) {
	addr := matrix.ClosedAddr(t)
	tests := []struct {
		name string
		o    redis.UniversalOptions
		want any
	}{
		{"one address", redis.UniversalOptions{Addrs: []string{addr}}, &redis.Client{}},
		{"no address", redis.UniversalOptions{}, &redis.Client{}},
		{"several addresses", redis.UniversalOptions{Addrs: []string{addr, addr}}, &redis.ClusterClient{}},
		{"cluster mode", redis.UniversalOptions{Addrs: []string{addr}, IsClusterMode: true}, &redis.ClusterClient{}},
		{"Sentinel", redis.UniversalOptions{Addrs: []string{addr}, MasterName: "mymaster"}, &redis.Client{}},
		{"Sentinel, routed", redis.UniversalOptions{Addrs: []string{addr}, MasterName: "mymaster", RouteRandomly: true}, &redis.ClusterClient{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			c, err := NewUniversalClientFromOptions(&o, sslconn.WithRetryBudget(-1))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if reflect.TypeOf(c) != reflect.TypeOf(tt.want) {
				t.Fatalf("%T, want %T", c, tt.want)
			}
			if len(o.Addrs) != len(tt.o.Addrs) {
				t.Errorf("the caller's Addrs became %v", o.Addrs)
			}
		})
	}
}

// countingHook counts the commands it sees: a hook the user adds later.
type countingHook struct{ n *atomic.Int32 }

func (h countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// countingLimiter allows everything and counts.
type countingLimiter struct{ allowed atomic.Int32 }

func (l *countingLimiter) Allow() error         { l.allowed.Add(1); return nil }
func (l *countingLimiter) ReportResult(_ error) {}

// TestFromOptionsCredentials: the pattern of short-lived credentials. A
// CredentialsProvider hands out the password of its time; the password
// changes on the server between connections, and every connection, in
// VERIFY_IDENTITY, logs in with the current one. OnConnect runs on every
// connection, Protocol, Limiter and a hook added later are kept.
func TestFromOptionsCredentials(t *testing.T) {
	certs, servers := env(t)
	s := servers[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := NewClient(redisURL("localhost", s.TLSPort, "ssl-mode=VERIFY_IDENTITY&ssl-ca="+certs.CA))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	const user = "iam_user"
	tokens := []string{"Iam-Token-0001", "Iam-Token-0002", "Iam-Token-0003"}
	setPassword := func(pw string) {
		t.Helper()
		if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", "resetpass", ">"+pw, "~*", "+@all").Err(); err != nil {
			t.Fatal(err)
		}
	}
	setPassword(tokens[0])
	defer admin.Do(context.Background(), "ACL", "DELUSER", user)

	var (
		current   atomic.Value
		provided  atomic.Int32
		connected atomic.Int32
		commands  atomic.Int32
		limiter   countingLimiter
	)
	current.Store(tokens[0])
	o := &redis.Options{
		Addr: testenv.Addr(s.TLSPort), // verified against the name below
		CredentialsProvider: func() (string, string) {
			provided.Add(1)
			return user, current.Load().(string)
		},
		OnConnect: func(ctx context.Context, cn *redis.Conn) error {
			connected.Add(1)
			return nil
		},
		Protocol:        2,
		Limiter:         &limiter,
		ConnMaxIdleTime: time.Nanosecond, // every command on a new connection
	}
	c, err := NewClientFromOptions(o, sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(certs.CA),
		sslconn.WithServerName("localhost"), sslconn.WithRetryBudget(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.AddHook(countingHook{&commands})
	for i, pw := range tokens {
		if i > 0 {
			setPassword(pw)
			current.Store(pw)
		}
		st, err := Verify(ctx, c)
		if err != nil {
			t.Fatalf("password %d: %v", i, err)
		}
		matrix.CheckStatus(t, "Verify", st, true)
		info, err := c.ClientInfo(ctx).Result()
		if err != nil {
			t.Fatalf("password %d: CLIENT INFO: %v", i, err)
		}
		if info.User != user || info.Resp != 2 {
			t.Fatalf("password %d: user %q, RESP%d; want %s, RESP2", i, info.User, info.Resp, user)
		}
	}
	n := int32(2 * len(tokens)) // Verify and CLIENT INFO, each on its own connection
	if connected.Load() < n || provided.Load() < n {
		t.Errorf("%d commands, but OnConnect ran %d times, the provider %d", n, connected.Load(), provided.Load())
	}
	if commands.Load() < n || limiter.allowed.Load() < n {
		t.Errorf("the later hook saw %d commands, the limiter %d, of %d", commands.Load(), limiter.allowed.Load(), n)
	}
	// A stale password is the server's refusal, without the password in it.
	current.Store("Iam-Token-stale")
	err = c.Ping(ctx).Err()
	if err == nil || !strings.Contains(err.Error(), "WRONGPASS") || strings.Contains(fmt.Sprintf("%v %+v", err, err), "Iam-Token-stale") {
		t.Fatalf("stale password: %v", err)
	}
}

// countingDialer is a user's Dialer: plain TCP, counted per address.
type countingDialer struct {
	mu    sync.Mutex
	addrs map[string]int
}

func (d *countingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	if d.addrs == nil {
		d.addrs = map[string]int{}
	}
	d.addrs[addr]++
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

func (d *countingDialer) calls() (n int, addrs int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.addrs {
		n += c
	}
	return n, len(d.addrs)
}

// TestFromOptionsDialer: the options' Dialer makes every connection, TLS
// runs over it; sslconn.WithDialer, given as well, wins.
func TestFromOptionsDialer(t *testing.T) {
	certs, servers := env(t)
	s := servers[1]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var user, option countingDialer
	var connected atomic.Int32
	o := &redis.Options{
		Addr: "localhost:" + fmt.Sprint(s.TLSPort), Password: testenv.RedisPassword, Dialer: user.dial,
		OnConnect:       func(context.Context, *redis.Conn) error { connected.Add(1); return nil },
		ConnMaxIdleTime: time.Nanosecond,
	}
	c, err := NewClientFromOptions(o, sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(certs.CA), sslconn.WithRetryBudget(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		st, err := Verify(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		matrix.CheckStatus(t, "Verify", st, true)
	}
	if n, _ := user.calls(); n < 3 || int32(n) != connected.Load() {
		t.Fatalf("the Dialer made %d connections, go-redis %d", n, connected.Load())
	}

	// Both: WithDialer wins.
	before, _ := user.calls()
	c2, err := NewClientFromOptions(o, sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(certs.CA),
		sslconn.WithRetryBudget(-1), sslconn.WithDialer(option.dial))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if st, err := Verify(ctx, c2); err != nil || !st.Encrypted {
		t.Fatalf("%+v %v", st, err)
	}
	if after, _ := user.calls(); after != before {
		t.Errorf("the options' Dialer was used though WithDialer was given")
	}
	if n, _ := option.calls(); n == 0 {
		t.Errorf("WithDialer's dial was not used")
	}
}

// TestFromOptionsClusterDialer: on a cluster, the options' Dialer makes
// the connection to every node, seed or discovered, each verified; the
// options' NewClient builds every node client.
func TestFromOptionsClusterDialer(t *testing.T) {
	certs, nodes := lazyCerts.Get(t), lazyCluster.Get(t)
	var user countingDialer
	var built atomic.Int32
	o := &redis.ClusterOptions{
		Addrs: []string{testenv.Addr(nodes[0].TLSPort)}, Password: testenv.RedisPassword, Dialer: user.dial,
		NewClient: func(o *redis.Options) *redis.Client { built.Add(1); return redis.NewClient(o) },
	}
	c, err := NewClusterClientFromOptions(o, sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(certs.CA), sslconn.WithRetryBudget(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error { return n.Ping(ctx).Err() }); err != nil {
		t.Fatal(err)
	}
	st, err := Verify(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	matrix.CheckStatus(t, "Verify", st, true)
	if _, addrs := user.calls(); addrs < len(nodes) {
		t.Errorf("the Dialer reached %d addresses, want all %d nodes", addrs, len(nodes))
	}
	if built.Load() < int32(len(nodes)) {
		t.Errorf("NewClient built %d node clients, want %d", built.Load(), len(nodes))
	}
}

// TestFromOptionsTLSConfig: a TLSConfig with RootCAs and a ServerName
// connects verified; the same with a name the certificate does not hold
// is refused as ErrHostnameMismatch.
func TestFromOptionsTLSConfig(t *testing.T) {
	certs, servers := env(t)
	pool := certPool(t, certs.CA)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connect := func(name string) error {
		c, err := NewClientFromOptions(&redis.Options{Addr: testenv.Addr(servers[3].TLSPort), Password: testenv.RedisPassword,
			TLSConfig: &tls.Config{RootCAs: pool, ServerName: name}}, sslconn.WithRetryBudget(-1))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		st, err := Verify(ctx, c)
		if err == nil && !st.Encrypted {
			t.Fatalf("%s: plaintext", name)
		}
		return err
	}
	// S3's certificate is for other.example.com: verified by name, not by the IP dialled.
	if err := connect("other.example.com"); err != nil {
		t.Fatalf("the certificate's name: %v", err)
	}
	if err := connect("not-this-host.example"); !errors.Is(err, sslconn.ErrHostnameMismatch) {
		t.Fatalf("wrong server name: %v, want ErrHostnameMismatch", err)
	}
}

// TestFromOptionsFailover: Sentinel, master and replica reached through
// the options' Dialer, all verified; the master's and the Sentinel's
// passwords from the options.
func TestFromOptionsFailover(t *testing.T) {
	certs := lazyCerts.Get(t)
	_, _, sentinel := startSentinel(t)
	var user countingDialer
	c, err := NewFailoverClientFromOptions(&redis.FailoverOptions{
		MasterName: testenv.SentinelMaster, SentinelAddrs: []string{testenv.Addr(sentinel.TLSPort)},
		SentinelPassword: testenv.RedisPassword, Password: testenv.RedisPassword, Dialer: user.dial,
	}, sslconn.WithMode(sslconn.VerifyCA), sslconn.WithCAFile(certs.CA), sslconn.WithRetryBudget(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := Verify(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	matrix.CheckStatus(t, "Verify", st, true)
	if _, addrs := user.calls(); addrs < 2 {
		t.Errorf("the Dialer reached %d addresses, want the Sentinel and the master", addrs)
	}
}

// TestUniversalFromOptionsConnects: one address is a standalone client,
// several a cluster client, each connected and verified.
func TestUniversalFromOptionsConnects(t *testing.T) {
	certs, servers := env(t)
	nodes := lazyCluster.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for name, addrs := range map[string][]string{
		"one":     {testenv.Addr(servers[1].TLSPort)},
		"several": {testenv.Addr(nodes[0].TLSPort), testenv.Addr(nodes[1].TLSPort)},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := NewUniversalClientFromOptions(&redis.UniversalOptions{Addrs: addrs, Password: testenv.RedisPassword},
				sslconn.WithMode(sslconn.VerifyIdentity), sslconn.WithCAFile(certs.CA), sslconn.WithRetryBudget(-1))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, cluster := c.(*redis.ClusterClient)
			if cluster != (len(addrs) > 1) {
				t.Fatalf("%T for %d addresses", c, len(addrs))
			}
			st, err := Verify(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			matrix.CheckStatus(t, "Verify", st, true)
		})
	}
}

// TestParseURLRefusesOurParams (#29): the *redis.Options path needs no
// reading of ssl-* parameters because go-redis's ParseURL refuses them, as
// it does any name it does not know: nothing of them can reach
// NewClientFromOptions unseen. Should go-redis start keeping them, this
// fails and the options path must read them.
func TestParseURLRefusesOurParams(t *testing.T) {
	for _, u := range []string{
		"rediss://localhost:6380/0?ssl-mode=VERIFY_CA",
		"redis://localhost:6379/0?ssl-ca=/etc/ca.pem",
		"redis://localhost:6379/0?ssl-mdoe=REQUIRED",
	} {
		if o, err := redis.ParseURL(u); err == nil || !strings.Contains(err.Error(), "unexpected option") {
			t.Errorf("redis.ParseURL(%s) = %+v, %v; want unexpected option", u, o, err)
		}
	}
}
