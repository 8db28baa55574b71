package mongocore

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/internal/param"
	"github.com/sslconn/sslconn/sslconn"
)

// URI is a MongoDB connection string split the way the driver reads it:
// scheme://[userinfo@]host1[,host2...]/[db][?options].
type URI struct {
	scheme, userinfo, hosts, path string
	opts                          []string // key=value, in order
}

// SplitURI splits s, or says why it is no MongoDB URI.
func SplitURI(s string) (*URI, error) {
	if err := param.CheckLength(s); err != nil {
		return nil, err
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "mongodb" && scheme != "mongodb+srv") {
		return nil, core.InvalidOption("uri", "a MongoDB URI starts with mongodb:// or mongodb+srv://", nil)
	}
	u := &URI{scheme: scheme}
	rest, query, _ := strings.Cut(rest, "?")
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest, u.path = rest[:i], rest[i:]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		u.userinfo, rest = rest[:at], rest[at+1:]
	}
	u.hosts = rest
	if u.hosts == "" {
		return nil, core.InvalidOption("uri", "the URI names no host", nil)
	}
	u.opts = strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' })
	return u, nil
}

// Password is the URI's password, unescaped.
func (u *URI) Password() string {
	_, pw, ok := strings.Cut(u.userinfo, ":")
	if !ok {
		return ""
	}
	if p, err := url.PathUnescape(pw); err == nil {
		return p
	}
	return pw
}

func (u *URI) String() string {
	s := u.scheme + "://"
	if u.userinfo != "" {
		s += u.userinfo + "@"
	}
	s += u.hosts + u.path
	if len(u.opts) > 0 {
		if u.path == "" {
			s += "/"
		}
		s += "?" + strings.Join(u.opts, "&")
	}
	return s
}

// uriParams is the shared ssl-* parameters of a URI the driver has
// already read, misspelt ones an error.
func uriParams(uri string) (url.Values, error) {
	u, err := SplitURI(uri)
	if err != nil {
		return nil, err
	}
	ours, _, err := take(u)
	return ours, err
}

// driverTLS is what the driver's own TLS options said.
type driverTLS struct {
	said                        []string // the settings as written, for errors
	implied                     []string // options that turn TLS on without tls=true, as written
	tls, tlsSet                 bool
	insecure, invalidHosts      bool
	insecureKey                 string // tlsInsecure or a synonym, as written, if present
	caFile, certKeyFile         string
	certFile, keyFile, password string
	// tlsDisableOCSPEndpointCheck and tlsDisableCertificateRevocationCheck,
	// when present: the driver's ClientOptions fields.
	noEndpoint, noRevocation *bool
	noEndpointKey, noRevKey  string
}

// mode maps the driver's TLS options onto a mode, as the driver would
// behave, except that tlsAllowInvalidHostnames, which the driver parses and
// then ignores, is honoured: it means VERIFY_CA.
func (d *driverTLS) mode(srv bool) sslconn.Mode {
	enabled := d.tls || (!d.tlsSet && (srv || len(d.implied) > 0 || d.insecure))
	switch {
	case d.tlsSet && !d.tls:
		return sslconn.Disabled
	case !enabled:
		return 0
	case d.insecure:
		return sslconn.Required
	case d.invalidHosts:
		return sslconn.VerifyCA
	}
	return sslconn.VerifyIdentity
}

// take removes the shared ssl-* parameters and the driver's TLS options
// from u, which the dialer takes over.
func take(u *URI) (url.Values, *driverTLS, error) {
	ours := url.Values{}
	d := &driverTLS{}
	var keep, keys []string
	for _, kv := range u.opts {
		k, v, _ := strings.Cut(kv, "=")
		uv, err := url.QueryUnescape(v)
		if err != nil {
			return nil, nil, core.InvalidOption(k, "badly escaped value", nil)
		}
		boolean := func() (bool, error) {
			b, err := strconv.ParseBool(uv)
			if err != nil {
				return false, core.InvalidOption(k, fmt.Sprintf("%s=%s is not true or false", k, uv), nil)
			}
			d.said = append(d.said, k+"="+uv)
			return b, nil
		}
		switch strings.ToLower(k) {
		case "tls", "ssl":
			b, err := boolean()
			if err != nil {
				return nil, nil, err
			}
			if d.tlsSet && d.tls != b {
				return nil, nil, core.InvalidOption("tls", "tls and ssl disagree", nil)
			}
			d.tls, d.tlsSet = b, true
		case "tlsinsecure", "sslinsecure", "tlsallowinvalidcertificates", "sslallowinvalidcertificates":
			b, err := boolean()
			if err != nil {
				return nil, nil, err
			}
			d.insecure = d.insecure || b
			if d.insecureKey == "" {
				d.insecureKey = k
			}
		case "tlsallowinvalidhostnames", "sslallowinvalidhostnames":
			b, err := boolean()
			if err != nil {
				return nil, nil, err
			}
			d.invalidHosts = b
		case "tlscafile", "sslcertificateauthorityfile":
			d.caFile = uv
			d.implied = append(d.implied, k)
		case "tlscertificatekeyfile", "sslclientcertificatekeyfile":
			d.certKeyFile = uv
			d.implied = append(d.implied, k)
		case "tlscertificatefile":
			// Like the driver, a client certificate turns TLS on.
			d.certFile = uv
			d.implied = append(d.implied, k)
		case "tlsprivatekeyfile":
			d.keyFile = uv
			d.implied = append(d.implied, k)
		case "tlscertificatekeyfilepassword", "sslclientcertificatekeypassword":
			d.password = uv
		case "tlsdisableocspendpointcheck", "tlsdisablecertificaterevocationcheck":
			// Like the driver, either turns TLS on, whatever its value.
			b, err := strconv.ParseBool(uv)
			if err != nil {
				return nil, nil, core.InvalidOption(k, fmt.Sprintf("%s=%s is not true or false", k, uv), nil)
			}
			d.implied = append(d.implied, k)
			if strings.EqualFold(k, "tlsDisableOCSPEndpointCheck") {
				d.noEndpoint, d.noEndpointKey = &b, k
			} else {
				d.noRevocation, d.noRevKey = &b, k
			}
		default:
			if param.Is(k) {
				ours.Set(k, uv)
			} else {
				keep = append(keep, kv)
				keys = append(keys, k)
			}
		}
	}
	if err := param.CheckUnknown(keys, nil); err != nil {
		return nil, nil, err
	}
	// The driver's own rules for the revocation options, which it no
	// longer sees.
	switch {
	case d.noEndpoint != nil && d.noRevocation != nil:
		return nil, nil, core.InvalidOption(d.noRevKey, d.noEndpointKey+" cannot be used with "+d.noRevKey+" (the driver's rule): drop one of them", nil)
	case d.insecureKey != "" && (d.noEndpoint != nil || d.noRevocation != nil):
		rev := d.noEndpointKey + d.noRevKey
		return nil, nil, core.InvalidOption(rev, d.insecureKey+" cannot be used with "+rev+" (the driver's rule): without verification there is no revocation to check", nil)
	}
	u.opts = keep
	return ours, d, nil
}

// spec is what the driver's TLS options say, for the resolver.
func (d *driverTLS) spec(srv bool) core.Native {
	said := d.said
	if !d.tlsSet {
		// TLS is implied: errors name the options that imply it.
		said = append(append([]string(nil), d.implied...), said...)
	}
	n := core.Native{Mode: d.mode(srv), Setting: strings.Join(said, "&")}
	if srv && n.Setting == "" {
		n.Setting = "mongodb+srv://"
	}
	if d.caFile != "" {
		n.Options = append(n.Options, sslconn.WithCAFile(d.caFile))
	}
	switch {
	case d.certKeyFile != "":
		n.Options = append(n.Options, sslconn.WithClientCertFiles(d.certKeyFile, d.certKeyFile))
	case d.certFile != "" || d.keyFile != "":
		n.Options = append(n.Options, sslconn.WithClientCertFiles(d.certFile, d.keyFile))
	}
	if d.password != "" {
		n.Options = append(n.Options, sslconn.WithClientKeyPassword(d.password))
	}
	return n
}

// Parsed is a URI resolved: what the driver's ApplyURI is to read, and the
// dialer that takes over TLS.
type Parsed struct {
	// URI is the URI without the parameters the dialer took over, for
	// the driver's ApplyURI.
	URI string
	// NoEndpoint is tlsDisableOCSPEndpointCheck, when present, for the
	// driver's ClientOptions field; NoRevocation the same for
	// tlsDisableCertificateRevocationCheck, which the dialer honours.
	NoEndpoint, NoRevocation *bool
	password                 string
	cfg                      *core.Config
	spec                     core.Spec
}

// ParseURI splits rawURI, takes out the shared parameters and the driver's
// TLS options, and resolves the mode, opts applied after the URI's.
func ParseURI(rawURI string, opts []sslconn.Option) (*Parsed, error) {
	u, err := SplitURI(rawURI)
	if err != nil {
		return nil, err
	}
	pw := u.Password()
	params, d, err := take(u)
	if err != nil {
		return nil, core.Redact(err, pw)
	}
	spec := core.Spec{Native: d.spec(u.scheme == "mongodb+srv"), Params: params, Secrets: []string{pw, d.password}, Probe: PlainHello, Engine: "mongodb"}
	cfg, err := core.Resolve(spec, opts...)
	if err != nil {
		return nil, err
	}
	return &Parsed{URI: u.String(), NoEndpoint: d.noEndpoint, NoRevocation: d.noRevocation, password: pw, cfg: cfg, spec: spec}, nil
}

// InvalidURI is the driver's refusal of p.URI (err, from its Validate), as
// an ErrInvalidOption without the password.
func (p *Parsed) InvalidURI(err error) error {
	return core.Redact(core.InvalidOption("uri", "invalid MongoDB URI", err), p.password)
}

// Dialer is the dialer for p, of the adapter named pkg, opts being those
// ParseURI was given.
func (p *Parsed) Dialer(pkg string, opts []sslconn.Option) *Dialer {
	return &Dialer{
		Pkg: pkg, Cfg: p.cfg, Spec: p.spec, Opts: append([]sslconn.Option(nil), opts...),
		Revocation: p.NoRevocation == nil || !*p.NoRevocation,
	}
}
