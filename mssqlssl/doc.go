// Package mssqlssl connects database/sql to SQL Server through
// github.com/microsoft/go-mssqldb in the SSL modes of package sslconn, which
// behave the same on every engine.
//
// DSNs are the driver's own — sqlserver:// URLs, ADO
// ("server=...;user id=...;password=...") and "odbc:" strings — plus the
// shared parameters (ssl-mode, ssl-ca, ssl-ca-password, ssl-cert, ssl-key,
// ssl-server-name, tls-version, ssl-cipher):
//
//	sqlserver://app:secret@rm-bp1xxxx.sqlserver.rds.aliyuncs.com:1433?database=shop&ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/ApsaraDB-CA-Chain.pem
//
// Without ssl-mode, the driver's own parameters map onto a mode:
// encrypt=disable DISABLED; encrypt=false PREFERRED; encrypt=true or strict
// VERIFY_IDENTITY, or REQUIRED with TrustServerCertificate=true;
// certificate= is the CA (a .pem or .der file, as the driver reads it;
// ssl-ca reads every format), hostNameInCertificate= the server-name
// override, and tlsmin= the lowest TLS version. A DSN with none of them
// gets PREFERRED. An ssl-mode refines encrypt= and is an error only when it
// contradicts it (see package sslconn: DISABLED with encrypt=true, a
// verifying mode with TrustServerCertificate=true, any encrypting mode with
// encrypt=disable), and serverCertificate= (pinning) is refused rather than
// silently dropped.
//
// sql.Open("mssqlssl", dsn), Open and NewConnector accept the same DSNs.
//
// NewConnectorFromConfig takes a msdsn.Config built in code (or by
// msdsn.Parse and changed) instead: its Encryption, TrustServerCertificate
// and parameters map onto a mode as the DSN parameters do, and a
// *tls.Config you set in TLSConfig is read, not discarded (RootCAs, first
// certificate, ServerName, versions, cipher suites; InsecureSkipVerify means
// REQUIRED). With Encryption left unset, a TLSConfig means VERIFY_IDENTITY.
// Options passed to it override the config; a contradiction (Encryption
// disabled and an encrypting mode, TrustServerCertificate or
// InsecureSkipVerify and VERIFY_CA) is an ErrInvalidOption naming both.
//
// NewAccessTokenConnector logs every new connection in with a Microsoft
// Entra ID access token, as go-mssqldb's own mssql.NewAccessTokenConnector
// does: the provider is called for each connection, the token travels
// inside TLS in the DSN's mode, and a provider that fails gives a
// *TokenError at once, not retried. Tokens appear in no error, log or
// printed value.
//
// sslconn.WithDialer's dial carries every connection and gets the host name
// unresolved, so a bastion or proxy resolves it in its own network.
// Verify and VerifyConn report a connection's TLS state: whether it is
// encrypted is the server's word (sys.dm_exec_connections.encrypt_option);
// the version and cipher come from the client's side of that connection.
//
// Note that the driver's encrypt=false encrypts only the login packet.
// PREFERRED here asks for encryption of the whole session and falls back to
// plaintext, per connection, only when the server's PRELOGIN answer is
// ENCRYPT_NOT_SUP. encrypt=strict selects TDS 8 (TLS first, ALPN tds/8.0),
// with any mode from REQUIRED up. SQL Server instances of the kind the cloud
// guides describe speak TLS 1.0 to 1.2: tls-version=TLSv1,TLSv1.1,TLSv1.2 (or
// tlsmin=1.0) reaches 1.0 and 1.1 explicitly.
//
// go-mssqldb reports handshake failures as text; the connector keeps its
// own verification errors, so certificate failures still match
// sslconn.ErrUnknownAuthority, ErrHostnameMismatch and ErrCertExpired, and
// it reads the server's PRELOGIN answer to report sslconn.ErrServerNoTLS and
// ErrServerRequiresTLS.
//
// New connections are retried with backoff while the server is down or
// restarting; statements are never replayed by this package.
package mssqlssl
