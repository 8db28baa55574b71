// Package sslconn is the engine-neutral core of the sslconn adapters: SSL
// modes that behave the same on MySQL, MongoDB, Redis and SQL Server, CA
// loading in every format the cloud consoles hand out, the one function that
// turns a mode into a tls.Config, one error vocabulary, retrying of new
// connections across restarts, and certificate expiry warnings.
//
// It imports no database driver. The adapters mysqlssl, mongossl, redisssl
// and mssqlssl wrap the drivers' own DSNs and return the drivers' own types.
//
// # Modes
//
//	mode             encrypts                  verifies chain  verifies host  server without TLS
//	DISABLED         no                        -               -              plaintext
//	PREFERRED        if the server offers TLS  no              no             falls back to plaintext
//	REQUIRED         yes                       no              no             ErrServerNoTLS
//	VERIFY_CA        yes                       yes             no             ErrServerNoTLS
//	VERIFY_IDENTITY  yes                       yes             yes            ErrServerNoTLS
//
// Which mode applies: WithMode (or ssl-mode in the DSN) wins; else the
// driver's own TLS setting (WithDefaultMode, set by the adapters); else a CA
// given alone selects VERIFY_CA; else PREFERRED. PREFERRED does not protect
// against an active attacker, who can pretend the server has no TLS.
//
// VERIFY_IDENTITY matches a certificate with no subjectAltName at all (what
// `openssl req -subj "/CN=host"` makes) on its Common Name, as MySQL's and
// OpenSSL's clients do; a certificate with SANs is matched on its SANs only.
//
// # Errors
//
// Every failure matches one of ErrServerNoTLS, ErrServerRequiresTLS,
// ErrUnknownAuthority, ErrHostnameMismatch, ErrCertExpired, ErrTLSVersion,
// ErrClientCertRequired, ErrHandshakeTimeout, ErrBadCA or ErrInvalidOption
// with errors.Is, keeps
// the underlying x509 or net error for errors.As, names the mode, the host and
// the option that would change the outcome, and never contains a password.
//
// # Connections
//
// Each Config keeps a TLS session cache its connections share, so a
// reconnect resumes its session where the server allows it (about a third
// cheaper against MariaDB, Redis and FerretDB; WithSessionCache to share or
// turn it off). Every handshake, protocol greeting and login is bounded by
// the handshake timeout, whatever the caller's context says. Connections
// from Dial check, before each write, whether the server has already closed
// them (a restart), so that such a request fails with ErrNotSent and can be
// retried safely; the check costs nothing right after a read, and one
// getsockopt otherwise. WithHandshakeObserver sees every handshake's
// certificates, in every mode.
package sslconn
