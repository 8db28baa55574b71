// Package bridge holds the few things package sslconn shares with the
// engine (internal/core) and the sslconn command without exporting them.
// A Config's settings travel in internal/settings.
package bridge

import (
	"crypto/x509"
	"errors"

	"github.com/sslconn/sslconn/internal/settings"
)

// ReadCAChain is sslconn.ReadCAChain with its errors naming settings as n
// says (the sslconn command's flags). Package sslconn sets it in its init.
var ReadCAChain func(path, password string, n *settings.Sources) ([]*x509.Certificate, error)

// ChainError is a verification error with the chain the server sent
// (leaf first), so that an error can name where the chain ends. Error and
// Unwrap are Err's.
type ChainError struct {
	Err   error
	Chain []*x509.Certificate
}

func (e *ChainError) Error() string { return e.Err.Error() }
func (e *ChainError) Unwrap() error { return e.Err }

// ReadCerts reads certificates from a file in any format
// sslconn.ReadCAChain reads, without requiring a CA among them (the
// command's ca inspect shows what such a file holds). Package sslconn sets
// it in its init.
// It also returns the format it detected ("PEM", "JKS", ...).
var ReadCerts func(path, password string) ([]*x509.Certificate, string, error)

// CertAskedKey is the context key under which a handshake carries an
// *atomic.Bool that the tls.Config sets when the server asks for a client
// certificate.
type CertAskedKey struct{}

// ErrNoCertificate is the verifier's error for a server that sent no
// certificate in a mode that verifies.
var ErrNoCertificate = errors.New("tls: server sent no certificate")
