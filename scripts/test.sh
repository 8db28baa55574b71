#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the servers, checks
# formatting, go.mod, vet on every platform and staticcheck, runs every test
# with the race detector against real MariaDB, Redis and FerretDB instances
# the tests start themselves, then runs each fuzz target briefly.
# Without servers: go test -short ./...
# Longer fuzzing: go test -fuzz=NAME -fuzztime=10m ./PKG
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

unformatted=$(gofmt -l . | grep -v '^internal/testkit/ferretdb/' || true)
if [ -n "$unformatted" ]; then
  echo "gofmt needed:"; echo "$unformatted"; exit 1
fi
go mod tidy -diff
(cd internal/testkit/ferretdb && go mod tidy -diff)
(cd internal/integration && go mod tidy -diff)
# The library and its tests build on every platform users develop on.
for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do
  GOOS=${target%/*} GOARCH=${target#*/} go vet ./...
done
(cd internal/testkit/ferretdb && go vet ./...)
staticcheck="go run honnef.co/go/tools/cmd/staticcheck@v0.8.2"
$staticcheck ./...
(cd internal/testkit/ferretdb && $staticcheck ./...)
(cd internal/integration && $staticcheck ./...)

go test -race -count=1 -timeout 15m ./...
# The ORMs and tracing libraries, in a module of their own so that none of
# them enters the library's go.mod.
(cd internal/integration && go vet ./... && go test -race -count=1 -timeout 15m ./...)
# Two TDS clients the project did not write (FreeTDS's tsql, Node's tedious)
# against the SQL Server test server, every scenario and mode (installs them).
scripts/tds-peers.sh

# A count, not a duration: a duration can end while the fuzzer is still
# gathering its baseline, which go test reports as "context deadline exceeded".
# Minimizing each new interesting input may take up to a minute by default,
# during which no input runs: a few seconds are plenty for a DSN.
fuzztime=${FUZZTIME:-100000x}
fuzz() { go test -run '^$' -fuzz "^$1\$" -fuzztime "$fuzztime" -fuzzminimizetime 3s "$2"; }
fuzz FuzzParseCAChain ./sslconn
fuzz FuzzParseDSN ./mysqlssl
fuzz FuzzAuthGuard ./mysqlssl
fuzz FuzzParseURL ./redisssl
fuzz FuzzClientOptions ./mongossl
fuzz FuzzParseDSN ./mssqlssl
echo "scripts/test.sh: all passed"
