package core

import "github.com/sslconn/sslconn/sslconn"

// The tests moved here from package sslconn name its identifiers unqualified.
type (
	Mode          = sslconn.Mode
	Option        = sslconn.Option
	Backoff       = sslconn.Backoff
	RetryEvent    = sslconn.RetryEvent
	Status        = sslconn.Status
	Error         = sslconn.Error
	ExpiryWarning = sslconn.ExpiryWarning
)

const (
	Disabled       = sslconn.Disabled
	Preferred      = sslconn.Preferred
	Required       = sslconn.Required
	VerifyCA       = sslconn.VerifyCA
	VerifyIdentity = sslconn.VerifyIdentity
)

var (
	ErrServerNoTLS        = sslconn.ErrServerNoTLS
	ErrServerRequiresTLS  = sslconn.ErrServerRequiresTLS
	ErrUnknownAuthority   = sslconn.ErrUnknownAuthority
	ErrHostnameMismatch   = sslconn.ErrHostnameMismatch
	ErrCertExpired        = sslconn.ErrCertExpired
	ErrTLSVersion         = sslconn.ErrTLSVersion
	ErrClientCertRequired = sslconn.ErrClientCertRequired
	ErrHandshakeTimeout   = sslconn.ErrHandshakeTimeout
	ErrUnavailable        = sslconn.ErrUnavailable
	ErrBadCA              = sslconn.ErrBadCA
	ErrInvalidOption      = sslconn.ErrInvalidOption
	ErrNotSent            = sslconn.ErrNotSent

	WithMode              = sslconn.WithMode
	WithCAFile            = sslconn.WithCAFile
	WithCA                = sslconn.WithCA
	WithCAPassword        = sslconn.WithCAPassword
	WithClientCertFiles   = sslconn.WithClientCertFiles
	WithClientKeyPassword = sslconn.WithClientKeyPassword
	WithClientCertificate = sslconn.WithClientCertificate
	WithServerName        = sslconn.WithServerName
	WithTLSVersions       = sslconn.WithTLSVersions
	WithCipherSuites      = sslconn.WithCipherSuites
	WithRetryBudget       = sslconn.WithRetryBudget
	WithBackoff           = sslconn.WithBackoff
	WithRetryCallback     = sslconn.WithRetryCallback
	WithLogger            = sslconn.WithLogger
	WithExpiryWarning     = sslconn.WithExpiryWarning
	WithSessionCache      = sslconn.WithSessionCache
	WithHandshakeTimeout  = sslconn.WithHandshakeTimeout
)
