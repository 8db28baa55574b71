// Package mongov1 connects go.mongodb.org/mongo-driver (v1.17) clients to
// MongoDB in the SSL modes of package sslconn, which behave the same on
// every engine: mongossl for the services that have not moved to v2. It is
// mongossl in v1's types, the same URIs, modes, errors, retries and restart
// behaviour, with the same code underneath; import it instead of mongossl,
// and only the driver you use is built:
//
//	import "github.com/sslconn/sslconn/mongossl/mongov1"
//
//	client, err := mongov1.Connect(ctx, uri) // a *mongo.Client of v1
//
// URIs are the driver's own, mongodb:// and mongodb+srv://, replica sets
// with several hosts and replicaSet= included, plus the shared parameters
// (ssl-mode, ssl-ca, ssl-ca-password, ssl-cert, ssl-key, ssl-server-name,
// tls-version, ssl-cipher), taken out before the driver sees the URI:
//
//	mongodb://app:secret@dds-bp1xxxx.mongodb.rds.aliyuncs.com:3717/admin?replicaSet=mgset-1&ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/ApsaraDB-CA-Chain.pem
//
// (For mongodb+srv://, v1's ApplyURI, and so ClientOptions, looks the
// hosts up in DNS.)
//
// Without ssl-mode, the driver's own TLS options map onto a mode: tls=false
// DISABLED; tls=true, tlsCAFile, tlsCertificateKeyFile, the revocation
// options below, or mongodb+srv:// VERIFY_IDENTITY; tlsInsecure or
// tlsAllowInvalidCertificates REQUIRED; and tlsAllowInvalidHostnames
// VERIFY_CA (the driver parses that one and then ignores it; here it does
// what it says). A URI with none of them gets PREFERRED, or VERIFY_CA when
// ssl-ca is given. tlsCAFile may be in any format sslconn reads (PEM, JKS,
// P7B, the console's zip).
//
// TLS is done by the dialer the package installs, for every host the driver
// connects to, seeds and replica-set members alike, each verified against
// the name it is reached by or the ssl-server-name override. PREFERRED,
// which the driver cannot express, tries TLS and falls back to plaintext on
// that connection only when the server does not speak TLS on the port.
//
// Options built in code: ConnectOptions takes the driver's own
// *options.ClientOptions and keeps all of it (monitors, OpenTelemetry's
// otelmongo among them, Auth, ServerAPIOptions, pool settings, AppName);
// only TLS moves into the package's dialer. A TLSConfig set on them turns
// TLS on, VERIFY_IDENTITY (REQUIRED with InsecureSkipVerify), and its
// RootCAs, certificate, ServerName and versions are used; a Dialer set on
// them makes the TCP connection under TLS, unless sslconn.WithDialer is
// given, which wins. Options from ClientOptions may be extended and passed
// to ConnectOptions too; Connect is ClientOptions, then ConnectOptions.
//
// Revocation: in VERIFY_CA and VERIFY_IDENTITY, the server's stapled OCSP
// response is checked as mongo-driver checks it for its own TLS: a revoked
// certificate, an unusable staple, or a Must-Staple certificate without
// one is refused with ErrUnknownAuthority, the message saying why.
// Only stapled responses are checked: the OCSP responders named in the
// certificate are never asked, so tlsDisableOCSPEndpointCheck=true changes
// nothing here, and the URI's tlsDisableCertificateRevocationCheck=true
// (an option of v2 that v1's options lack; honoured here in the URI, as
// in mongossl) turns the check off.
//
// Connect and ConnectOptions open one connection before returning the
// client, so that a certificate or TLS error comes back within seconds as
// an sslconn error, not as the driver's "server selection error" after
// 30 s; a server that is restarting is waited for up to the retry budget.
//
// Restarts: new connections are dialled with the core's retry budget and
// backoff. A client from Connect or ConnectOptions notices, on Linux, the
// server closing its connections as it happens, and has the driver drop
// its pooled ones then: the first operation after a restart waits for the
// server and gets a new connection, where with the bare driver it fails on
// a closed one (its pool, in v1.17 as in v2, checks none before use, and
// its monitor polls every 10 s unless the server streams, as MongoDB 4.4+
// does). Retryable
// reads and writes stay as the driver defines them (retryWrites and
// retryReads default to true): the driver retries a read, or a write to a
// replica set or sharded cluster, once after a network error, and the
// server recognises a retried write by its transaction number, so it is not
// applied twice on MongoDB; it never retries RunCommand (Ping included),
// nor a write to a standalone server. An operation in flight when the
// server goes, or started within a millisecond or so of it, reports the
// error to the caller.
package mongov1

// The package's other files are generated from mongossl's: edit those and
// run go generate ./mongossl (see mongossl/internal/v1gen).
