package matrix

import (
	"context"
	"database/sql/driver"
	"errors"
)

// SQLClient is an RTTClient over a database/sql driver's connector: each
// Connect is one new connection of the same connector.
type SQLClient struct {
	driver.Connector
	conns []driver.Conn
}

// Connect opens a connection and keeps it until Close.
func (c *SQLClient) Connect(ctx context.Context) error {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return err
	}
	c.conns = append(c.conns, conn)
	return nil
}

// Close closes the connections.
func (c *SQLClient) Close() error {
	var errs []error
	for _, conn := range c.conns {
		errs = append(errs, conn.Close())
	}
	c.conns = nil
	return errors.Join(errs...)
}
