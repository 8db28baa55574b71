package mongossl

import "github.com/sslconn/sslconn/mongossl/internal/mongocore"

// The names the package's tests used before the driver-independent code
// moved to mongocore, which both adapters share.

var (
	preflight     = mongocore.Preflight
	tlsFeatureOID = mongocore.TLSFeatureOID
)

type pingKey = mongocore.PingKey

type uri struct{ *mongocore.URI }

func (u uri) password() string { return u.Password() }

func splitURI(s string) (*uri, error) {
	u, err := mongocore.SplitURI(s)
	return &uri{u}, err
}
