// Package redisssl connects github.com/redis/go-redis/v9 clients, standalone,
// cluster and Sentinel (NewFailoverClient), to Redis in the SSL modes of package sslconn, which behave the
// same on every engine.
//
// URLs are go-redis's own, plus the shared parameters (ssl-mode, ssl-ca,
// ssl-ca-password, ssl-cert, ssl-key, ssl-key-password, ssl-server-name,
// tls-version, ssl-cipher), which are taken out before go-redis sees the URL:
//
//	rediss://:secret@r-bp1xxxx.redis.rds.aliyuncs.com:6380/0?ssl-ca=/etc/ApsaraDB-CA-Chain.pem
//
// Without ssl-mode, rediss:// means VERIFY_IDENTITY (what go-redis does),
// rediss:// with skip_verify=true means REQUIRED, and redis:// means
// PREFERRED, or VERIFY_CA when a CA is given.
//
// TLS is done by the dialer the package installs, once per connection, for
// every node a cluster client reaches (seeds, CLUSTER SLOTS, MOVED and ASK
// targets alike): each node is verified against the address it is reached
// by, usually an IP, or the ssl-server-name override. go-redis's own cluster
// TLS shares one ServerName across all nodes; this does not.
//
// PREFERRED, which go-redis cannot express, tries TLS and falls back to
// plaintext on that connection only when the server does not speak TLS on
// the port: it answers the ClientHello in plaintext, closes, or stays silent.
// Redis on its plaintext port never answers a ClientHello, so no connection
// waits for one: a PING on a second connection, raced with the handshake,
// tells a plaintext port within milliseconds, and an address found
// plaintext is remembered, so later connections go plaintext at once (the
// grace, the memory and the recheck: docs/modes.md, section PREFERRED).
// DISABLED against a TLS-only port fails with
// sslconn.ErrServerRequiresTLS: Redis resets such a connection without a
// word, so the dialer checks whether the port speaks TLS.
//
// Redis serves TLS and plaintext on separate ports (port and tls-port); use
// the TLS port for modes that encrypt.
//
// Restarts: new connections are dialled with the core's retry budget and
// backoff for the commands that wait for them: a dial whose waiting commands
// all gave up (their contexts ended) makes no new attempt, one the dialer
// cannot tie to a waiting command (a Sentinel's, MinIdleConns', go-redis's
// probe after failed dials, a PubSub's) gets one, and Close stops every
// dial of the client at once, the commands still waiting getting
// redis.ErrClosed. go-redis's
// MaxRetries is set to -1 unless the URL sets max_retries: a command whose
// connection died after it was sent (an end of stream, a reset, a read
// timeout) fails with sslconn.ErrOutcomeUnknown and is never re-sent, so no
// write is applied twice. Set max_retries in the URL to opt
// in to go-redis's retries for idempotent workloads. Cluster redirections
// (MOVED, ASK) are still followed: the command was not executed.
// go-redis's cluster client would also re-send a command after its
// connection died (end of stream, reset, read timeout)
// whatever MaxRetries says; here such a command fails with
// sslconn.ErrOutcomeUnknown instead. Replies that prove a command was not executed
// (LOADING, MASTERDOWN, TRYAGAIN, CLUSTERDOWN, and READONLY from a master a
// Sentinel failover demoted) are retried within the budget.
//
// Options built in code: NewClientFromOptions, NewClusterClientFromOptions,
// NewFailoverClientFromOptions and NewUniversalClientFromOptions take
// go-redis's own option structs, copy them (the caller's are never
// changed) and keep what they set: OnConnect, CredentialsProvider and its
// siblings (a fresh password or token per connection), Limiter, Protocol,
// pool settings, MaintNotificationsConfig, a cluster's NewClient (wrapped,
// not replaced), and hooks added to the client later. The options' Dialer
// makes the TCP connection the TLS runs over (an SSH tunnel, SOCKS); if
// sslconn.WithDialer is given too, it wins. TLSConfig maps onto a mode as
// rediss:// does: set means VERIFY_IDENTITY, or REQUIRED with
// InsecureSkipVerify; nil says nothing (PREFERRED, or VERIFY_CA with a CA).
// Its RootCAs, first certificate, ServerName, MinVersion, MaxVersion and
// CipherSuites become the equivalent options, which the options given to
// the constructor override; its other fields are not used. A mode that
// contradicts it (InsecureSkipVerify and VERIFY_CA, or a TLSConfig and
// DISABLED) is an sslconn.ErrInvalidOption error naming both, and nil
// options are one too. MaxRetries, DialTimeout and DialerRetries are set as
// for URLs (see Restarts), MaxRetries and DialTimeout only when left zero.
// The URL constructors are the same path: the URL is parsed into go-redis's
// options first.
//
// Maintenance notifications (go-redis's MaintNotificationsConfig; Redis
// Enterprise and Cloud announce upgrades and moves) work through the
// package's dialer and are left as set (go-redis's default, auto, for
// URLs): go-redis dials the endpoint a MOVING notification names through
// the client's Dialer, so that connection is made and verified like any
// other. The one setting go-redis derives from its own TLSConfig, which the
// dialer leaves nil, is the kind of endpoint it asks the server to
// announce: an IP without TLS, a host name with TLS. In every mode but
// DISABLED an endpoint type left to auto-detection is therefore detected
// as go-redis does with TLS on, so that moved endpoints can be verified by
// name. go-redis itself does not support them for Sentinel (failover)
// clients.
//
// Sentinel: NewFailoverClient takes go-redis's failover URL (the host and
// addr= are Sentinels, master_name= the master, password= its password) and
// dials Sentinels, master and replicas in the same mode. Sentinel announces
// nodes by IP, so VERIFY_IDENTITY needs IP SANs or ssl-server-name.
package redisssl
