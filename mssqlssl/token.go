package mssqlssl

import (
	"context"
	"errors"
	"sync"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// NewAccessTokenConnector is NewConnector for Microsoft Entra ID (Azure AD)
// access tokens, like go-mssqldb's own mssql.NewAccessTokenConnector: every
// new connection calls token with the connection's context and logs in with
// the token it returns (federated authentication, security token library),
// inside TLS in the DSN's mode. A user id or password in the DSN is not
// used. When token fails (or returns an empty token), Connect returns a
// *TokenError holding its error and does not retry: the next connection
// asks again. The token appears in no error, log or printed value.
//
// The token travels inside the TLS session: use VERIFY_IDENTITY (the
// default with encrypt=true); in DISABLED, and in PREFERRED with a server
// offering no TLS, it would be sent in plaintext.
func NewAccessTokenConnector(dsn string, token func(context.Context) (string, error), opts ...sslconn.Option) (*Connector, error) {
	if token == nil {
		return nil, core.InvalidOption("token", "the access token provider is nil", nil)
	}
	c, err := NewConnector(dsn, opts...)
	if err != nil {
		return nil, err
	}
	c.token = token
	return c, nil
}

// TokenError is the error of an access token provider (see
// NewAccessTokenConnector), as Connect returns it: the connection was not
// logged in, and it is not retried. Err is the provider's error; the tokens
// the provider last returned are replaced in its text.
type TokenError struct {
	Err error
}

func (e *TokenError) Error() string {
	return "mssqlssl: the access token provider failed: " + e.Err.Error()
}

// Unwrap returns the provider's error.
func (e *TokenError) Unwrap() error { return e.Err }

// errEmptyToken is the TokenError of a provider that returned "" and no error.
var errEmptyToken = errors.New("it returned an empty token")

// errTokenProvider is what the driver sees of a provider's failure: the
// connector reports the provider's own error as a *TokenError.
var errTokenProvider = errors.New("mssqlssl: the access token provider failed")

// recentTokens remembers the last few distinct tokens a provider returned.
type recentTokens struct {
	mu     sync.Mutex
	tokens []string
}

const keepTokens = 8

func (r *recentTokens) add(tok string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tokens {
		if t == tok {
			return
		}
	}
	if len(r.tokens) == keepTokens {
		r.tokens = r.tokens[1:]
	}
	r.tokens = append(r.tokens, tok)
}

func (r *recentTokens) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.tokens...)
}

// tokenFor wraps the user's token provider for one attempt: it records the
// provider's error for classify (the driver sees only errTokenProvider) and
// each token, to keep it out of errors, and calls resume when the provider
// has answered.
func (c *Connector) tokenFor(a *attempt, tokens *[]string, resume func()) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		tok, err := c.token(ctx)
		resume()
		if err == nil && tok == "" {
			err = errEmptyToken
		}
		if err != nil {
			a.mu.Lock()
			a.tokenErr = core.Redact(err, append(c.recent.all(), tok)...)
			a.mu.Unlock()
			return "", errTokenProvider
		}
		*tokens = append(*tokens, tok)
		c.recent.add(tok)
		return tok, nil
	}
}

// PRELOGIN ENCRYPT values ([MS-TDS] 2.2.6.5).
