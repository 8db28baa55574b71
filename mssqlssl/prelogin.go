package mssqlssl

import (
	"database/sql/driver"
	"encoding/binary"
	"net"
	"sync/atomic"
	"time"
)

const (
	encryptNotSup = 2
	encryptReq    = 3
)

// sniffConn reads the server's first TDS packet, the PRELOGIN answer, as it
// passes, to learn its ENCRYPT value; it changes nothing.
type sniffConn struct {
	net.Conn
	a     *attempt
	sniff bool
	buf   []byte
	dc    driver.Conn // the driver's connection on top, once logged in

	closed atomic.Bool
	by     atomic.Int64 // login deadline, unix ns; 0: none
}

// setLoginBy sets (or, with the zero time, lifts) the login deadline.
func (s *sniffConn) setLoginBy(t time.Time) {
	if t.IsZero() {
		s.by.Store(0)
	} else {
		s.by.Store(t.UnixNano())
	}
	_ = s.Conn.SetDeadline(t)
}

func (s *sniffConn) loginBy() time.Time {
	if n := s.by.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

func (s *sniffConn) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p)
	if s.sniff && n > 0 {
		s.buf = append(s.buf, p[:n]...)
		if len(s.buf) >= 8 {
			if total := int(binary.BigEndian.Uint16(s.buf[2:4])); len(s.buf) >= total && total >= 8 {
				s.a.serverEncrypt.Store(int32(preloginEncrypt(s.buf[8:total])))
				s.sniff, s.buf = false, nil
			}
		}
	}
	return n, err
}

func preloginEncrypt(b []byte) int {
	for i := 0; i+5 <= len(b) && b[i] != 0xFF; i += 5 {
		if b[i] == 0x01 {
			off := int(binary.BigEndian.Uint16(b[i+1:]))
			if l := int(binary.BigEndian.Uint16(b[i+3:])); l > 0 && off < len(b) {
				return int(b[off])
			}
		}
	}
	return -1
}
