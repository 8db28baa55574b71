#!/usr/bin/env bash
# The demo: installs MariaDB if missing, then shows every SSL mode against
# every server scenario on this machine. See internal/demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec go run ./internal/demo
