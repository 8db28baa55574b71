package redisssl

import (
	"context"
	"errors"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/sslconn/sslconn/internal/core"
	"github.com/sslconn/sslconn/sslconn"
)

// Verify reports the TLS state of a live connection of the client: the one
// that carries an ECHO of a random token, as the client's dialer made it.
// It asks the connection itself, not the server's view of the client's
// address, so it works through proxies and NAT. For a cluster client it
// checks a connection to every master and reports a plaintext one if any.
func Verify(ctx context.Context, c redis.UniversalClient) (sslconn.Status, error) {
	if cc, ok := c.(*redis.ClusterClient); ok {
		var (
			mu    sync.Mutex
			worst *sslconn.Status
		)
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			st, err := verifyOne(ctx, node)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			if worst == nil || (worst.Encrypted && !st.Encrypted) {
				worst = &st
			}
			return nil
		})
		if err != nil || worst == nil {
			return sslconn.Status{}, err
		}
		return *worst, nil
	}
	return verifyOne(ctx, c)
}

func verifyOne(ctx context.Context, c redis.Cmdable) (sslconn.Status, error) {
	p := core.NewProbe()
	defer p.Close()
	if err := c.Echo(ctx, p.Token()).Err(); err != nil {
		return sslconn.Status{}, err
	}
	st, ok := p.Status()
	if !ok {
		return sslconn.Status{}, errors.New("redisssl: the client's connection was not made by redisssl (use redisssl.NewClient or its siblings)")
	}
	return st, nil
}
