package mongocore

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
)

// helloMsg is an OP_MSG {hello: 1, $db: "admin"} with requestID 1.
var helloMsg = func() []byte {
	doc := []byte{0, 0, 0, 0}
	doc = append(doc, 0x10)
	doc = append(doc, "hello\x00"...)
	doc = binary.LittleEndian.AppendUint32(doc, 1)
	doc = append(doc, 0x02)
	doc = append(doc, "$db\x00"...)
	doc = binary.LittleEndian.AppendUint32(doc, 6)
	doc = append(doc, "admin\x00"...)
	doc = append(doc, 0)
	binary.LittleEndian.PutUint32(doc, uint32(len(doc)))
	msg := make([]byte, 16, 16+5+len(doc))
	binary.LittleEndian.PutUint32(msg[4:], 1)     // requestID
	binary.LittleEndian.PutUint32(msg[12:], 2013) // OP_MSG
	msg = append(msg, 0, 0, 0, 0, 0)              // flagBits, section kind 0
	msg = append(msg, doc...)
	binary.LittleEndian.PutUint32(msg, uint32(len(msg)))
	return msg
}()

// PlainHello is PREFERRED's plaintext question (see core.Spec.Probe): a server
// that speaks the MongoDB wire protocol in plaintext answers hello (an
// error reply too) with a message that responds to it; a TLS port answers
// with an alert or closes. The whole reply is read.
func PlainHello(_ context.Context, conn net.Conn) error {
	if _, err := conn.Write(helloMsg); err != nil {
		return err
	}
	var h [16]byte
	if _, err := io.ReadFull(conn, h[:]); err != nil {
		return err
	}
	size := binary.LittleEndian.Uint32(h[0:])
	op := binary.LittleEndian.Uint32(h[12:])
	if binary.LittleEndian.Uint32(h[8:]) != 1 || (op != 2013 && op != 1) || size < 16 || size > 48<<20 {
		return errors.New("not a MongoDB reply")
	}
	_, err := io.CopyN(io.Discard, conn, int64(size-16))
	return err
}
