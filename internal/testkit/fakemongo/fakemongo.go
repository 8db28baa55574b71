// Package fakemongo is a stand-in for a MongoDB server controlled by an
// attacker on the path: it speaks the wire protocol (OP_QUERY and OP_MSG)
// to the unmodified mongo-driver, authenticates it with SCRAM-SHA-256 as
// a real server does, answers every other command with ok, and records
// every byte the client sent, so that a test can say whether the password
// crossed. Without TLS it closes a ClientHello as a plaintext server does
// (what a stripper presents); with TLS it terminates it with a certificate
// of its own (an impostor).
package fakemongo

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/sslconn/sslconn/internal/testkit/serve"

	"github.com/xdg-go/scram"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Config is the account and how the server presents itself.
type Config struct {
	User, Password string
	// TLS, if set: every connection must start TLS with this config.
	// Nil: plaintext only, a ClientHello is closed.
	TLS *tls.Config
}

// Server is a running fake server.
type Server struct {
	cfg  Config
	loop *serve.Loop
	auth *scram.Server

	mu     sync.Mutex
	wire   bytes.Buffer // every byte the clients sent, inside TLS included
	proved int          // SCRAM conversations that proved the password
}

// Start listens on a free loopback port.
func Start(cfg Config) (*Server, error) {
	client, err := scram.SHA256.NewClient(cfg.User, cfg.Password, "")
	if err != nil {
		return nil, err
	}
	creds, err := client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: "fakemongo-salt", Iters: 4096})
	if err != nil {
		return nil, err
	}
	auth, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return creds, nil })
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, auth: auth}
	loop, err := serve.Start(func(c net.Conn) { _ = s.session(c) })
	if err != nil {
		return nil, err
	}
	s.loop = loop
	return s, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.loop.Addr() }

// Wire returns every byte the clients sent, as the attacker read them.
func (s *Server) Wire() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.wire.Bytes())
}

// Proved reports how many SCRAM conversations proved the password: the
// attacker holds that many exchanges to guess the password from offline.
func (s *Server) Proved() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proved
}

// Close stops the server and its connections, and waits for them.
func (s *Server) Close() { s.loop.Close() }

// recorder records what the client sends.
type recorder struct {
	r io.Reader
	s *Server
}

func (r recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.s.mu.Lock()
	r.s.wire.Write(p[:n])
	r.s.mu.Unlock()
	return n, err
}

func (s *Server) session(raw net.Conn) error {
	br := bufio.NewReader(raw)
	first, err := br.Peek(1)
	if err != nil {
		return err
	}
	var rw io.ReadWriter = struct {
		io.Reader
		io.Writer
	}{br, raw}
	switch isTLS := first[0] == 0x16; {
	case isTLS && s.cfg.TLS == nil:
		return nil // a plaintext server closes a ClientHello
	case isTLS:
		tc := tls.Server(&peeked{raw, br}, s.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			return err
		}
		rw = tc
	case s.cfg.TLS != nil:
		return nil
	}
	in := recorder{rw, s}
	var conv *scram.ServerConversation
	for {
		var h [16]byte
		if _, err := io.ReadFull(in, h[:]); err != nil {
			return err
		}
		n := int(binary.LittleEndian.Uint32(h[:]))
		if n < 16 || n > 16<<20 {
			return errors.New("fakemongo: bad message length")
		}
		body := make([]byte, n-16)
		if _, err := io.ReadFull(in, body); err != nil {
			return err
		}
		reqID, op := binary.LittleEndian.Uint32(h[4:]), binary.LittleEndian.Uint32(h[12:])
		var cmd bson.Raw
		switch op {
		case 2004: // OP_QUERY: flags, collection name, skip, return, query
			i := bytes.IndexByte(body[4:], 0)
			if i < 0 || len(body) < 4+i+1+8+5 {
				return errors.New("fakemongo: bad OP_QUERY")
			}
			cmd = bson.Raw(body[4+i+1+8:])
		case 2013: // OP_MSG: flags, kind-0 section first
			if len(body) < 5+5 || body[4] != 0 {
				return errors.New("fakemongo: bad OP_MSG")
			}
			cmd = bson.Raw(body[5:])
		default:
			return errors.New("fakemongo: unexpected opcode")
		}
		if l := int(binary.LittleEndian.Uint32(cmd)); l <= len(cmd) {
			cmd = cmd[:l]
		}
		reply, c2 := s.answer(cmd, conv)
		conv = c2
		doc, err := bson.Marshal(reply)
		if err != nil {
			return err
		}
		var out []byte
		if op == 2004 { // OP_REPLY
			out = binary.LittleEndian.AppendUint32(nil, 0)
			out = binary.LittleEndian.AppendUint64(out, 0)
			out = binary.LittleEndian.AppendUint32(out, 0)
			out = binary.LittleEndian.AppendUint32(out, 1)
			out = append(out, doc...)
			op = 1
		} else {
			out = append([]byte{0, 0, 0, 0, 0}, doc...)
		}
		hdr := binary.LittleEndian.AppendUint32(nil, uint32(16+len(out)))
		hdr = binary.LittleEndian.AppendUint32(hdr, reqID+1000)
		hdr = binary.LittleEndian.AppendUint32(hdr, reqID)
		hdr = binary.LittleEndian.AppendUint32(hdr, op)
		if _, err := rw.Write(append(hdr, out...)); err != nil {
			return err
		}
	}
}

// answer is the reply to one command, and the SCRAM conversation after it.
func (s *Server) answer(cmd bson.Raw, conv *scram.ServerConversation) (bson.D, *scram.ServerConversation) {
	elems, err := cmd.Elements()
	if err != nil || len(elems) == 0 {
		return bson.D{{Key: "ok", Value: 0}, {Key: "errmsg", Value: "bad command"}}, conv
	}
	switch name := elems[0].Key(); name {
	case "hello", "isMaster", "ismaster":
		return bson.D{
			{Key: "ismaster", Value: true}, {Key: "isWritablePrimary", Value: true}, {Key: "helloOk", Value: true},
			{Key: "maxBsonObjectSize", Value: int32(16 << 20)}, {Key: "maxMessageSizeBytes", Value: int32(48000000)},
			{Key: "maxWriteBatchSize", Value: int32(100000)}, {Key: "localTime", Value: bson.NewDateTimeFromTime(time.Now())},
			{Key: "logicalSessionTimeoutMinutes", Value: int32(30)}, {Key: "connectionId", Value: int32(1)},
			{Key: "minWireVersion", Value: int32(0)}, {Key: "maxWireVersion", Value: int32(21)},
			{Key: "readOnly", Value: false}, {Key: "saslSupportedMechs", Value: bson.A{"SCRAM-SHA-256"}},
			{Key: "ok", Value: 1.0},
		}, conv
	case "saslStart", "saslContinue":
		if name == "saslStart" {
			conv = s.auth.NewConversation()
		}
		if conv == nil {
			return bson.D{{Key: "ok", Value: 0}, {Key: "errmsg", Value: "no conversation"}}, nil
		}
		_, payload, _ := cmd.Lookup("payload").BinaryOK()
		out, err := conv.Step(string(payload))
		if err != nil {
			return bson.D{{Key: "ok", Value: 0}, {Key: "code", Value: int32(18)}, {Key: "codeName", Value: "AuthenticationFailed"}, {Key: "errmsg", Value: "Authentication failed."}}, nil
		}
		if conv.Done() && conv.Valid() {
			s.mu.Lock()
			s.proved++
			s.mu.Unlock()
		}
		return bson.D{
			{Key: "conversationId", Value: int32(1)}, {Key: "done", Value: conv.Done()},
			{Key: "payload", Value: bson.Binary{Data: []byte(out)}}, {Key: "ok", Value: 1.0},
		}, conv
	}
	return bson.D{{Key: "n", Value: int32(1)}, {Key: "ok", Value: 1.0}}, conv
}

// peeked is raw read through the reader that peeked at its first byte.
type peeked struct {
	net.Conn
	r io.Reader
}

func (p *peeked) Read(b []byte) (int, error) { return p.r.Read(b) }
