package sslconn

import "log/slog"

func init() {
	// Keep test output readable; tests that check logging use their own logger.
	slog.SetDefault(slog.New(slog.DiscardHandler))
}
