package tdsserver

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
)

// session is one client connection.
type session struct {
	srv       *Server
	cfg       Config
	raw       net.Conn
	rw        io.ReadWriter // raw, or TLS once encrypted
	encrypted atomic.Bool   // read by other sessions' sys.dm_exec_connections
	spid      uint16
	info      SessionInfo
}

func (s *session) serve() error {
	br := bufio.NewReader(s.raw)
	first, err := br.Peek(1)
	if err != nil {
		return err
	}
	raw := &peekedConn{Conn: s.raw, r: br}
	s.rw = raw
	if first[0] == 0x16 {
		// TDS 8 strict: TLS first, then TDS inside it.
		if s.cfg.Cert == nil {
			return errors.New("strict TLS without a certificate")
		}
		s.info.Strict, s.info.Encryption = true, "strict"
		tc := tls.Server(raw, s.tlsConfig([]string{"tds/8.0"}))
		if err := tc.Handshake(); err != nil {
			s.info.Encryption = "tls-failed"
			return err
		}
		s.rw = tc
		s.encrypted.Store(true)
		s.noteTLS(tc)
	}

	// PRELOGIN ([MS-TDS] 2.2.6.5).
	typ, payload, err := s.readMessage()
	if err != nil {
		return err
	}
	if typ != packPrelogin {
		return fmt.Errorf("expected PRELOGIN, got packet type %#x", typ)
	}
	clientEnc := preloginOption(payload, 0x01)
	if preloginOffset(payload, 0x01) >= 0 {
		s.info.ClientEncrypt = int(clientEnc)
	}
	answer, tlsMode := s.negotiate(clientEnc)
	if s.encrypted.Load() {
		answer, tlsMode = EncryptNotSup, tlsNone // already inside TLS
	}
	s.info.Answer = int(answer)
	// A client that announces federated authentication (FEDAUTHREQUIRED)
	// gets the option back, set, and must echo it in LOGIN7's FEDAUTH
	// feature extension ([MS-TDS] 2.2.6.5, 2.2.6.4).
	fedAuthAsked := preloginOffset(payload, preloginFedAuthRequired) >= 0
	if err := s.writeMessage(packReply, preloginResponse(answer, fedAuthAsked)); err != nil {
		return err
	}
	if tlsMode == tlsRefuse {
		return errors.New("client refused encryption that the server requires")
	}
	if tlsMode != tlsNone {
		// The handshake travels inside PRELOGIN packets, then TLS records
		// flow bare on the connection.
		hc := NewHandshakeConn(raw, s.spid)
		tc := tls.Server(hc, s.tlsConfig(nil))
		if err := tc.Handshake(); err != nil {
			s.info.Encryption = "tls-failed"
			return err
		}
		hc.Done()
		s.rw = tc
		s.encrypted.Store(true)
		s.info.Encryption = "full"
		if tlsMode == tlsLoginOnly {
			s.info.Encryption = "login-only"
		}
		s.noteTLS(tc)
	}

	// LOGIN7 ([MS-TDS] 2.2.6.4).
	typ, payload, err = s.readMessage()
	if err != nil {
		return err
	}
	if typ != packLogin7 {
		return fmt.Errorf("expected LOGIN7, got packet type %#x", typ)
	}
	if tlsMode == tlsLoginOnly {
		// encrypt=false: only the login packet was encrypted.
		s.rw = raw
		s.encrypted.Store(false)
	}
	user, password, database, err := parseLogin7(payload)
	if err != nil {
		return err
	}
	fed, err := parseFedAuth(payload)
	if err != nil {
		return err
	}
	switch {
	case fed != nil:
		// Federated authentication: the token is the credential.
		if fed.library != fedAuthLibrarySecurityToken || fed.echo != fedAuthAsked {
			msg := "Login failed: unsupported federated authentication request."
			return s.writeMessage(packReply, append(errorToken(18456, 14, msg), doneToken(0x0002, 0, 0)...))
		}
		if want := s.srv.token(); want == "" || fed.token != want {
			msg := "Login failed for user '<token-identified principal>'."
			return s.writeMessage(packReply, append(errorToken(18456, 14, msg), doneToken(0x0002, 0, 0)...))
		}
	case user != s.cfg.User || password != s.cfg.Password:
		msg := fmt.Sprintf("Login failed for user '%s'.", user)
		return s.writeMessage(packReply, append(errorToken(18456, 14, msg), doneToken(0x0002, 0, 0)...))
	}
	if database == "" {
		database = "master"
	}
	var resp []byte
	resp = append(resp, envChange(1, database, "master")...)
	resp = append(resp, envChange(4, "4096", "4096")...)
	resp = append(resp, loginAck()...)
	if fed != nil {
		resp = append(resp, featureExtAckFedAuth()...)
	}
	resp = append(resp, doneToken(0, 0, 0)...)
	if err := s.writeMessage(packReply, resp); err != nil {
		return err
	}
	s.info.LoggedIn = true

	for {
		typ, payload, err := s.readMessage()
		if err != nil {
			return err
		}
		switch typ {
		case packSQLBatch:
		case packAttn:
			// A cancel: the driver sends one when it closes rows before
			// reading the final DONE. Acknowledge with DONE_ATTN ([MS-TDS] 2.2.1.7).
			if len(payload) != 0 {
				return fmt.Errorf("tds: attention with %d bytes of data", len(payload))
			}
			if err := s.writeMessage(packReply, doneToken(0x0020, 0, 0)); err != nil {
				return err
			}
			s.info.Attentions++
			continue
		case packRPC, packBulk, packTransMgr:
			// Requests SQL Server serves and this stand-in does not: say so
			// with an error, as SQL Server would for a request it refuses.
			if err := s.writeMessage(packReply, append(errorToken(50000, 16, "tdsserver: only SQL batches are supported"), doneToken(0x0002, 0, 0)...)); err != nil {
				return err
			}
			s.info.Unsupported++
			continue
		default:
			// PRELOGIN or LOGIN7 again, a server's message type, or no type
			// at all: SQL Server ends the connection.
			return fmt.Errorf("tds: packet type %#x after the login", typ)
		}
		answer, ok := s.answer(sqlText(payload))
		if err := s.writeMessage(packReply, answer); err != nil {
			return err
		}
		s.info.Batches++
		if !ok {
			s.info.Unsupported++
		}
	}
}

// noteTLS records the handshake's outcome in the session's info.
func (s *session) noteTLS(tc *tls.Conn) {
	st := tc.ConnectionState()
	s.info.TLSVersion, s.info.CipherSuite, s.info.ALPN = st.Version, st.CipherSuite, st.NegotiatedProtocol
}

type tlsMode int

const (
	tlsNone tlsMode = iota
	tlsFull
	tlsLoginOnly
	tlsRefuse
)

// negotiate applies [MS-TDS] 2.2.6.5's table of client and server ENCRYPT values.
func (s *session) negotiate(client byte) (byte, tlsMode) {
	switch s.cfg.Encrypt {
	case EncryptNotSup:
		return EncryptNotSup, tlsNone
	case EncryptReq:
		if client == EncryptNotSup {
			return EncryptReq, tlsRefuse // SQL Server ends such a connection
		}
		return EncryptReq, tlsFull
	default: // TLS optional
		switch client {
		case EncryptNotSup:
			return EncryptNotSup, tlsNone
		case EncryptOff:
			return EncryptOff, tlsLoginOnly
		default:
			return EncryptOn, tlsFull
		}
	}
}

// tlsConfig is the server's TLS configuration: for TDS 8 strict (alpn
// tds/8.0) as configured, for a handshake inside PRELOGIN packets (alpn
// nil) at most MaxPreloginVersion.
func (s *session) tlsConfig(alpn []string) *tls.Config {
	c := &tls.Config{
		Certificates: []tls.Certificate{*s.cfg.Cert},
		MinVersion:   s.cfg.MinVersion,
		MaxVersion:   s.cfg.MaxVersion,
		NextProtos:   alpn,
		// SQL Server sends no session tickets.
		SessionTicketsDisabled: true,
	}
	if alpn == nil && (c.MaxVersion == 0 || c.MaxVersion > MaxPreloginVersion) {
		c.MaxVersion = MaxPreloginVersion
	}
	return c
}
