// Package mysqlssl connects database/sql to MySQL and MariaDB through
// github.com/go-sql-driver/mysql in the SSL modes of package sslconn, which
// behave the same on every engine.
//
// Any DSN the driver accepts works unchanged, plus the shared parameters
// ssl-mode, ssl-ca, ssl-ca-password, ssl-cert, ssl-key, ssl-server-name,
// tls-version and ssl-cipher (also spelled ssl_mode, sslMode, and
// Connector/J's trustCertificateKeyStoreUrl and friends, libpq's sslrootcert):
//
//	user:pass@tcp(rm-xxx.mysql.rds.aliyuncs.com:3306)/db?ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/ApsaraDB-CA-Chain.pem
//
// Without ssl-mode, the driver's own tls= maps onto a mode (false DISABLED,
// preferred PREFERRED, skip-verify REQUIRED, true VERIFY_IDENTITY); a CA
// given alone means VERIFY_CA; and a DSN with neither gets PREFERRED, MySQL's
// own default. Note that this differs from go-sql-driver/mysql, whose default
// is no TLS at all. An ssl-mode refines tls= and is an error only when it
// contradicts it (DISABLED with tls=true, a verifying mode with
// tls=skip-verify, any encrypting mode with tls=false); configs registered
// with mysql.RegisterTLSConfig are not used: every connector has its own TLS
// configuration. A parameter that looks like one of ours but is misspelled
// (ssl-mdoe) is an error, where the driver would send it to the server as a
// session variable.
//
// A config built with mysql.ParseDSN goes to NewConnectorFromConfig: the
// driver leaves the names it does not know, ours among them, in cfg.Params,
// and NewConnectorFromConfig reads ours there as NewConnector reads a DSN's
// (and takes them out of its copy, so they never reach the server), with the
// same check for misspelt ones; its options win over them. ParseDSN needs a
// path's '/' escaped (url.QueryEscape); NewConnector does not.
//
// VERIFY_CA, which the driver cannot express, checks the chain but not the
// host name. PREFERRED falls back to plaintext per connection, only when the
// server's handshake lacks CLIENT_SSL: unlike the driver's tls=preferred, one
// fallback does not turn the whole pool plaintext, so after an instance is
// restarted with SSL enabled every new connection is encrypted.
//
// New connections are retried with backoff while the server is down or
// restarting (see sslconn.WithRetryBudget). Statements are retried only
// when the server refused them unapplied: a write a read-only node refuses
// (error 1290 --read-only, 1836, 1792), as after a primary/secondary
// switchover, outside a transaction and without multiStatements, waits
// within the retry budget until the endpoint serves a writable node and is
// then retried by database/sql on a new connection; connections opened
// before are dropped from the pool. rejectReadOnly=false in the DSN (or
// Connector.SetRejectReadOnly(false)) turns this off. The driver's
// CheckConnLiveness is always on, so pooled connections a restart killed
// are dropped before use.
//
// Errors match sslconn's sentinels: sslconn.ErrServerNoTLS for REQUIRED and
// stronger against a server without TLS, sslconn.ErrServerRequiresTLS for
// DISABLED against an account or server that requires TLS (MariaDB answers
// that with error 1045, like a wrong password; the connector tells the two
// apart by trying the same login over TLS once), and the certificate
// sentinels. A 1045 after the server asked for a client certificate and
// none was sent matches no sentinel: MariaDB answers a wrong password and
// an account created REQUIRE X509 without a certificate in the same words,
// so the error names both, the wrong password first, with the fix of each.
package mysqlssl
