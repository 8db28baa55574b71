// Package bridge holds the few things package sslconn shares with the
// engine (internal/core) and the sslconn command without exporting them.
// A Config's settings travel in internal/settings.
package bridge

import (
	"crypto/x509"
	"errors"
)

// ReadCerts reads certificates from a file in any format
// sslconn.ReadCAChain reads, without requiring a CA among them (the
// command's ca inspect shows what such a file holds). Package sslconn sets
// it in its init.
var ReadCerts func(path, password string) ([]*x509.Certificate, error)

// CertAskedKey is the context key under which a handshake carries an
// *atomic.Bool that the tls.Config sets when the server asks for a client
// certificate.
type CertAskedKey struct{}

// ErrNoCertificate is the verifier's error for a server that sent no
// certificate in a mode that verifies.
var ErrNoCertificate = errors.New("tls: server sent no certificate")
