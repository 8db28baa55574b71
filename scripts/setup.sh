#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine:
# MariaDB and Redis servers (Debian packages), their clients, openssl, zip
# and keytool for the certificate fixtures, ip for the test hosts. Does nothing when all are there.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have mariadbd || need+=(mariadb-server)
have mariadb || need+=(mariadb-client)
have redis-server || need+=(redis-server)
have redis-cli || need+=(redis-tools)
have openssl || need+=(openssl)
have zip || need+=(zip)
have keytool || need+=(default-jre-headless)
# The silent-primary tests put servers in network namespaces of their own.
have ip || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q >/dev/null
  # Package scripts must not start system-wide servers: the tests start
  # private instances on free ports.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
