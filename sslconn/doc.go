// Package sslconn holds what the sslconn adapters share and users set: the
// SSL modes, options, CA loading in every format the cloud consoles hand
// out, and one error vocabulary. The adapters mysqlssl, mongossl, redisssl
// and mssqlssl wrap the drivers' own DSNs and return the drivers' own
// types; this package imports no database driver.
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
// driver's own TLS setting (tls=true, rediss://, encrypt=true, ...); else a
// CA given alone selects VERIFY_CA; else PREFERRED. An explicit mode refines
// the driver's setting and is an ErrInvalidOption error only when the two
// contradict: the driver turns TLS off and the mode encrypts, the driver
// turns TLS on and the mode is DISABLED, or the driver turns verification
// off (tls=skip-verify, TrustServerCertificate=true, tlsInsecure,
// skip_verify) and the mode verifies. PREFERRED does not protect against an
// active attacker, who can pretend the server has no TLS.
//
// VERIFY_IDENTITY matches a certificate with no subjectAltName at all (what
// `openssl req -subj "/CN=host"` makes) on its Common Name, as MySQL's and
// OpenSSL's clients do; a certificate with SANs is matched on its SANs only.
//
// # DSN parameters
//
// Every adapter reads these next to the driver's own, in any spelling
// (ssl-mode, ssl_mode, sslMode) and under the names MySQL Connector/J and
// libpq use for them (after the semicolon):
//
//	ssl-mode           DISABLED ... VERIFY_IDENTITY (libpq's names too); sslMode
//	ssl-ca             CA file in any format ParseCAChain reads; trustCertificateKeyStoreUrl
//	ssl-ca-password    JKS/PKCS#12 password; trustCertificateKeyStorePassword
//	ssl-ca-system      include: trust the system roots too (WithSystemRoots); fallbackToSystemTrustStore
//	ssl-cert           client certificate (PEM file) for mutual TLS
//	ssl-key            its key (PEM file, may be encrypted)
//	ssl-key-password   password of an encrypted ssl-key; sslpassword
//	ssl-server-name    host name to verify instead of the one connected to
//	tls-version        e.g. TLSv1.2,TLSv1.3; enabledTLSProtocols
//	ssl-cipher         OpenSSL or IANA names; enabledSSLCipherSuites
//	dead-peer-timeout  10s, or off: how long a silent server may hold an operation
//
// A parameter that is neither the driver's nor one of these but looks like
// one (ssl-mdoe, tls_versoin) is an ErrInvalidOption error naming the
// parameter meant, instead of reaching the server.
//
// # Errors
//
// Every failure to connect matches one of ErrServerNoTLS,
// ErrServerRequiresTLS, ErrUnknownAuthority, ErrHostnameMismatch,
// ErrCertExpired, ErrBadCertificate, ErrTLSVersion, ErrClientCertRequired,
// ErrHandshakeTimeout, ErrUnavailable, ErrBadCA or ErrInvalidOption with
// errors.Is, keeps the underlying x509, net or driver error for errors.As,
// names the mode, the host and the setting that would change the outcome
// (see Error), and never contains a password. The setting is named as it
// was made: a DSN parameter (ssl-ca), an option (WithCAFile) or the sslconn
// command's flag (--ca); a value set that failed (a server name, a CA file)
// is named with what it held. Errors that retrying cannot fix come back at
// once. A request on a connection the server closed fails with ErrNotSent
// or ErrOutcomeUnknown (see Restarts).
//
// # Restarts
//
// New connections are retried with backoff and jitter while the server
// refuses or does not answer: by default for 3 minutes at an address that
// has answered before and for 30 seconds at one that never has (a typo in
// the host or port); with WithRetryBudget, for the budget given; never
// beyond the caller's context. Then the error is ErrUnavailable, with the
// attempts made and the last cause. A request that was never sent
// (ErrNotSent) is retried; one whose outcome is unknown (ErrOutcomeUnknown)
// is reported, never replayed.
//
// # Connections
//
// Each Config keeps a TLS session cache its connections share, so a
// reconnect resumes its session where the server allows it (about a third
// cheaper against MariaDB, Redis and FerretDB; WithSessionCache to share or
// turn it off). Every handshake, protocol greeting and login is bounded by
// the handshake timeout, whatever the caller's context says. Before each
// write the adapters check whether the server has already closed the
// connection (a restart), so such a request fails with ErrNotSent and can
// be retried safely: on Linux from the kernel's TCP state, on macOS and the
// BSDs by peeking; on Windows the check is off.
package sslconn
