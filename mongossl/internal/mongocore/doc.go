// Package mongocore is what mongossl (mongo-driver v2) and mongossl/mongov1
// (mongo-driver v1) share: everything that does not depend on the driver's
// types. The URI's parameters and the driver's TLS options (uri.go), the
// TLS dialer the adapters install, with Connect's preflight and its
// revocation check (dialer.go, park.go, ocsp.go), PREFERRED's plaintext probe
// (probe.go), and the pings that have the driver drop its pooled
// connections when the server closes one, on core.Conn.OnClose's word
// (closeping.go). The adapters keep the translation: their options, client
// and monitor types.
//
// It imports no driver, so that users of one driver do not build the other.
package mongocore
