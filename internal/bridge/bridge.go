// Package bridge hands the library's engine (internal/core) what package
// sslconn keeps unexported, without an import cycle: the engine imports
// sslconn for its types, so sslconn cannot import the engine. Package
// sslconn sets the variables in its init; package core asserts them to its
// own interfaces once, at its init. Nothing else uses this package but
// the sslconn command.
package bridge

import (
	"crypto/x509"
	"errors"
)

var (
	// Engine returns, for a *sslconn.Config, a value with the methods of
	// core's engine interface.
	Engine func(config any) any
	// Options is a value with the methods of core's optionMaker interface:
	// options only the adapters set.
	Options any
	// ReadCerts reads certificates from a file in any format ReadCAChain
	// reads, without requiring a CA among them (the command's ca inspect
	// shows what such a file holds).
	ReadCerts func(path, password string) ([]*x509.Certificate, error)
)

// CertAskedKey is the context key under which a handshake carries an
// *atomic.Bool that the tls.Config sets when the server asks for a client
// certificate.
type CertAskedKey struct{}

// ErrNoCertificate is the verifier's error for a server that sent no
// certificate in a mode that verifies.
var ErrNoCertificate = errors.New("tls: server sent no certificate")
