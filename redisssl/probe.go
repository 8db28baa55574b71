package redisssl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
)

// ping is PREFERRED's plaintext question (see core.Spec.Probe): a Redis
// server that speaks plaintext answers PING with +PONG, or -NOAUTH before
// AUTH; a TLS port answers with an alert or closes.
func ping(_ context.Context, conn net.Conn) error {
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	// One reply line; the server sends nothing after it.
	var buf [256]byte
	n := 0
	for {
		m, err := conn.Read(buf[n:])
		n += m
		if n > 0 && buf[0] != '+' && buf[0] != '-' {
			return fmt.Errorf("not a Redis reply: %q", buf[:min(n, 8)])
		}
		if bytes.IndexByte(buf[:n], '\n') >= 0 {
			return nil
		}
		if err != nil {
			return err
		}
		if n == len(buf) {
			return errors.New("reply line too long for a Redis reply")
		}
	}
}
