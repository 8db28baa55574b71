#!/usr/bin/env bash
# The demo: installs MariaDB and Redis if missing, builds the sslconn
# command, then runs `sslconn check` against a local server of each engine
# and shows every SSL mode against every server scenario. See internal/testkit/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/sslconn" ./cmd/sslconn
SSLCONN_BIN="$bin/sslconn" go run ./internal/testkit/demo
