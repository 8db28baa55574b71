#!/usr/bin/env bash
# Two TDS clients the project did not write vouch for its SQL Server test
# server (internal/testkit/tdsserver): FreeTDS's tsql (Debian's freetds-bin, GnuTLS)
# and Node's tedious (npm, Microsoft's JavaScript driver) connect to it in
# every scenario the mssqlssl matrix uses (S0-S7, and TDS 8 strict), with
# the options that correspond to each SSL mode, log in, run the statements
# the tests send (SELECT @@VERSION, SELECT 1, the sys.dm_exec_connections
# query reporting encrypt_option, SELECT @@SPID, INSERT INTO writes,
# SELECT id FROM writes; tedious also cancels a request, an attention) and
# disconnect. The outcome of each cell is checked against the table below;
# the script fails on any difference, and on any session in which the
# server saw something it could not answer or negotiated TLS 1.3 inside
# TDS 7.x PRELOGIN packets, which SQL Server never does.
#
# Installs what it needs on Debian like scripts/setup.sh (freetds-bin,
# openssl, zip and keytool for the certificates, Node.js), and tedious,
# pinned, into a cache directory outside the repository. Every client call
# and the whole server run are bounded in time. scripts/test.sh runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

# tedious 19.2.2 is the last release for Node.js 20 (20.x needs Node 22).
TEDIOUS_VERSION=19.2.2
cache=${SSLCONN_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/sslconn}
tedious_dir=$cache/tedious-$TEDIOUS_VERSION
start=$(date +%s)

# --- installs ---------------------------------------------------------------
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have tsql || need+=(freetds-bin)
have openssl || need+=(openssl)
have zip || need+=(zip)
have keytool || need+=(default-jre-headless)
have node || need+=(nodejs)
have npm || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "tds-peers: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 $sudo apt-get update -q >/dev/null
  timeout 900 $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
installed=$(node -p "require('$tedious_dir/node_modules/tedious/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$TEDIOUS_VERSION" ]; then
  echo "tds-peers: installing tedious@$TEDIOUS_VERSION into $tedious_dir"
  mkdir -p "$cache"
  staging=$(mktemp -d "$cache/tedious-install.XXXXXX")
  if ! timeout 300 npm install --prefix "$staging" --no-audit --no-fund --ignore-scripts \
      --omit=dev --loglevel=error "tedious@$TEDIOUS_VERSION" >/dev/null; then
    rm -rf "$staging"
    echo "tds-peers: npm install tedious@$TEDIOUS_VERSION failed" >&2
    exit 1
  fi
  rm -rf "$tedious_dir"
  mv "$staging" "$tedious_dir"
fi
freetds_version=$(tsql -C 2>/dev/null | awk -F': ' '/Version:/ {sub(/^freetds v/, "", $2); print $2; exit}')
node_version=$(node --version)

# --- the test server ----------------------------------------------------------
work=$(mktemp -d)
server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  exec 3>&- # end of standard input: tdsserve stops its servers
  for _ in $(seq 200); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    echo "tds-peers: tdsserve still running 20 s after end of input; SIGTERM" >&2
    kill -TERM "$server_pid" 2>/dev/null || true
    sleep 5
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  server_rc=0
  wait "$server_pid" || server_rc=$?
  server_pid=""
}
trap 'stop_server; rm -rf "$work"' EXIT

timeout 300 go build -o "$work/tdsserve" ./internal/testkit/tdsserver/cmd/tdsserve
# tdsserve stops at the end of its standard input: a FIFO this shell holds
# open on fd 3 (read-write, so that neither open blocks) until stop_server,
# or until it dies.
mkfifo "$work/ctl"
exec 3<>"$work/ctl"
"$work/tdsserve" -lifetime 10m <"$work/ctl" >"$work/server.out" 2>"$work/server.err" 3>&- &
server_pid=$!
for _ in $(seq 1200); do
  grep -qx ready "$work/server.out" && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$work/server.err" >&2
    echo "tds-peers: tdsserve exited before it was ready" >&2
    exit 1
  fi
  sleep 0.1
done
grep -qx ready "$work/server.out" || { echo "tds-peers: tdsserve not ready after 120 s" >&2; exit 1; }
certs=$(awk '$1 == "certs" {print $2}' "$work/server.out")
ca=$certs/server-ca.crt
port_of() { # S1 -> its port
  awk -v s="$1" '$1 == "server" && index($2, s "-") == 1 {n = split($3, a, ":"); print a[n]}' "$work/server.out"
}
user=sa
password=Tds-Secret-pw1

# --- the expected table -------------------------------------------------------
# Rows: scenario (testenv.Scenario; "-strict": the same server reached by TDS 8
# strict, TLS first with ALPN tds/8.0) and SSL mode. mssqlssl: what its matrix
# test asserts (matrix.Want, and TestModeFromDSN for strict; "-" where it has
# no such cell); not run here. FreeTDS and tedious: what this script checks.
#   plain          connected, encrypt_option FALSE, no TLS at all
#   login-TLS1.x   connected, encrypt_option FALSE; only LOGIN7 was encrypted
#   TLS / TLS1.x   connected, encrypt_option TRUE (the version the server saw)
#   no-TLS, requires-TLS, unknown-CA, host-mismatch, expired, TLS-version:
#                  refused, for the reason of the sslconn sentinel of that name
#   n/a            the client has no setting for this mode (see docs/tds-test-server.md)
expected() {
  cat <<'EOF'
S0        DISABLED         plain         plain           plain
S0        PREFERRED        plain         plain           plain
S0        REQUIRED         no-TLS        no-TLS          n/a
S0        VERIFY_CA        no-TLS        no-TLS          n/a
S0        VERIFY_IDENTITY  no-TLS        no-TLS          plain
S1        DISABLED         plain         plain           plain
S1        PREFERRED        TLS           login-TLS1.2    TLS1.2
S1        REQUIRED         TLS           TLS1.2          n/a
S1        VERIFY_CA        TLS           TLS1.2          n/a
S1        VERIFY_IDENTITY  TLS           TLS1.2          TLS1.2
S2        DISABLED         requires-TLS  requires-TLS    requires-TLS
S2        PREFERRED        TLS           TLS1.2          TLS1.2
S2        REQUIRED         TLS           TLS1.2          n/a
S2        VERIFY_CA        TLS           TLS1.2          n/a
S2        VERIFY_IDENTITY  TLS           TLS1.2          TLS1.2
S3        DISABLED         plain         plain           plain
S3        PREFERRED        TLS           login-TLS1.2    TLS1.2
S3        REQUIRED         TLS           TLS1.2          n/a
S3        VERIFY_CA        TLS           TLS1.2          n/a
S3        VERIFY_IDENTITY  host-mismatch host-mismatch   host-mismatch
S4        DISABLED         plain         plain           plain
S4        PREFERRED        TLS           login-TLS1.2    TLS1.2
S4        REQUIRED         TLS           TLS1.2          n/a
S4        VERIFY_CA        unknown-CA    unknown-CA      n/a
S4        VERIFY_IDENTITY  unknown-CA    unknown-CA      unknown-CA
S5        DISABLED         plain         plain           plain
S5        PREFERRED        TLS           login-TLS1.2    TLS1.2
S5        REQUIRED         TLS           TLS1.2          n/a
S5        VERIFY_CA        TLS           TLS1.2          n/a
S5        VERIFY_IDENTITY  TLS           TLS1.2          TLS1.2
S6        DISABLED         plain         plain           plain
S6        PREFERRED        TLS           login-TLS1.2    TLS1.2
S6        REQUIRED         TLS           TLS1.2          n/a
S6        VERIFY_CA        expired       expired         n/a
S6        VERIFY_IDENTITY  expired       expired         expired
S7        DISABLED         plain         plain           plain
S7        PREFERRED        TLS-version   login-TLS1.1    TLS-version
S7        REQUIRED         TLS-version   TLS1.1          n/a
S7        VERIFY_CA        TLS-version   TLS1.1          n/a
S7        VERIFY_IDENTITY  TLS-version   TLS1.1          TLS-version
S1-strict REQUIRED         -             n/a             n/a
S1-strict VERIFY_CA        -             n/a             n/a
S1-strict VERIFY_IDENTITY  TLS           n/a             TLS1.3
S3-strict VERIFY_IDENTITY  -             n/a             host-mismatch
S4-strict REQUIRED         TLS           n/a             n/a
S4-strict VERIFY_IDENTITY  unknown-CA    n/a             unknown-CA
S6-strict VERIFY_IDENTITY  -             n/a             expired
EOF
}

# --- FreeTDS (tsql) -----------------------------------------------------------
# DISABLED: encryption = off (PRELOGIN ENCRYPT_NOT_SUP); PREFERRED: request
# (ENCRYPT_OFF: SQL Server then encrypts the login only); REQUIRED: require
# (ENCRYPT_ON) without a CA, which FreeTDS does not verify; VERIFY_CA: a CA
# file and check certificate hostname = no; VERIFY_IDENTITY: a CA file and
# the host name checked. FreeTDS 1.3 has no TDS 8 strict (1.4 added
# encryption = strict).
freetds_settings() { # mode -> freetds.conf lines, or nothing for n/a
  case $1 in
    DISABLED) echo "encryption = off" ;;
    PREFERRED) echo "encryption = request" ;;
    REQUIRED) echo "encryption = require" ;;
    VERIFY_CA) printf 'encryption = require\nca file = %s\ncheck certificate hostname = no\n' "$ca" ;;
    VERIFY_IDENTITY) printf 'encryption = require\nca file = %s\ncheck certificate hostname = yes\n' "$ca" ;;
  esac
}

# run_freetds ID SCENARIO MODE: prints "connected ENCRYPT_OPTION PORT" or
# "refused REASON" or "bad DETAIL".
run_freetds() {
  local id=$1 scenario=$2 mode=$3 dir=$work/freetds-$1
  mkdir -p "$dir"
  {
    printf '[global]\n  tds version = 7.4\n  connect timeout = 5\n  timeout = 5\n'
    printf '[peer]\n  host = localhost\n  port = %s\n' "$(port_of "$scenario")"
    freetds_settings "$mode" | sed 's/^/  /'
  } >"$dir/freetds.conf"
  printf '%s\ngo\n' \
    "SELECT @@VERSION" "SELECT 1" \
    "SELECT encrypt_option, client_net_address, client_tcp_port FROM sys.dm_exec_connections WHERE session_id = @@SPID" \
    "SELECT @@SPID" "INSERT INTO writes (id) VALUES ($id)" "SELECT id FROM writes" >"$dir/in.sql"
  echo exit >>"$dir/in.sql"
  if [ "$(cat "$work/freetds.timeouts" 2>/dev/null || echo 0)" -ge 2 ]; then
    echo "refused skipped (FreeTDS timed out twice already)"
    return
  fi
  local rc=0
  FREETDSCONF=$dir/freetds.conf TDSDUMP=$dir/dump timeout -k 5 20 \
    tsql -S peer -U "$user" -P "$password" -o q <"$dir/in.sql" >"$dir/out" 2>"$dir/err" || rc=$?
  local enc
  enc=$(awk -F'\t' '$1 ~ /^(TRUE|FALSE)$/ && $2 == "127.0.0.1" {print $1, $3; exit}' "$dir/out")
  if [ -n "$enc" ]; then
    if [ "$rc" != 0 ] || grep -q '^Msg ' "$dir/err" || ! grep -q 'Microsoft SQL Server' "$dir/out" ||
        ! grep -qx 1 "$dir/out" || ! grep -qx "$id" "$dir/out"; then
      echo "bad answers (exit $rc): $(tr '\n' ' ' <"$dir/err" | cut -c1-200)"
      return
    fi
    echo "connected $enc"
    return
  fi
  local dump=$dir/dump status
  [ -f "$dump" ] || : >"$dump"
  status=$(sed -n 's/.*Certificate status: \([0-9]*\).*/\1/p' "$dump" | head -1)
  if [ "$rc" = 124 ] || [ "$rc" = 137 ] || grep -q 'Adaptive Server connection timed out' "$dir/err"; then
    echo $(($(cat "$work/freetds.timeouts" 2>/dev/null || echo 0) + 1)) >"$work/freetds.timeouts"
    echo "refused timeout"
  elif grep -q 'Certificate hostname does not match' "$dump"; then
    echo "refused host-mismatch"
  elif [ -n "$status" ] && (( status & 0x400 )); then # GNUTLS_CERT_EXPIRED
    echo "refused expired"
  elif [ -n "$status" ] && (( status & 0x40 )); then # GNUTLS_CERT_SIGNER_NOT_FOUND
    echo "refused unknown-CA"
  elif grep -q 'detected crypt flag 2' "$dump"; then # the server answered ENCRYPT_NOT_SUP
    echo "refused no-TLS"
  elif grep -q 'detected crypt flag 3' "$dump" && [ "$mode" = DISABLED ]; then # ENCRYPT_REQ
    echo "refused requires-TLS"
  elif grep -qi 'protocol version\|unsupported version' "$dump"; then
    echo "refused TLS-version"
  else
    echo "refused error (exit $rc): $(tr '\n' ' ' <"$dir/err" | cut -c1-200)"
  fi
}

# --- tedious ------------------------------------------------------------------
# DISABLED: encrypt false (ENCRYPT_NOT_SUP); PREFERRED: encrypt true with
# trustServerCertificate; VERIFY_IDENTITY: encrypt true with the CA in
# cryptoCredentialsDetails; strict: encrypt 'strict' with the CA (tedious
# always verifies a strict connection, host name included). tedious has no
# REQUIRED (encrypt true does not refuse a server that answers
# ENCRYPT_NOT_SUP: it logs in in plaintext, as PREFERRED does) and no
# VERIFY_CA (verifying always checks the host name).
tedious_settings() { # scenario mode -> "encrypt trust ca", or nothing for n/a
  local strict=false
  case $1 in *-strict) strict=true ;; esac
  case $strict/$2 in
    false/DISABLED) echo "false false -" ;;
    false/PREFERRED) echo "true true -" ;;
    false/VERIFY_IDENTITY) echo "true false $ca" ;;
    true/VERIFY_IDENTITY) echo "strict false $ca" ;;
  esac
}

cat >"$work/peer.js" <<'EOF'
// Reads cases "id port encrypt trust ca" (ca "-" for none) on standard
// input, one connection each, in turn; prints "id connected ENCRYPT_OPTION
// PORT", "id refused REASON" or "id bad DETAIL" per case.
'use strict';
const fs = require('fs');
const { Connection, Request } = require('tedious');
const [user, password] = process.argv.slice(2);

function reason(err) {
  const text = [err, err && err.cause].filter(Boolean).map((e) => `${e.code || ''} ${e.message || ''}`).join(' ');
  if (/ETIMEOUT|timeout/i.test(text)) return 'timeout';
  if (/EENCRYPT|requires encryption/.test(text)) return 'requires-TLS';
  if (/Hostname\/IP does not match|ERR_TLS_CERT_ALTNAME_INVALID/.test(text)) return 'host-mismatch';
  if (/certificate has expired|CERT_HAS_EXPIRED/.test(text)) return 'expired';
  if (/self[- ]signed|unable to get local issuer|unable to verify the first certificate/.test(text)) return 'unknown-CA';
  if (/protocol version|unsupported protocol|no protocols available|wrong version number/i.test(text)) return 'TLS-version';
  return 'error ' + text.replace(/\s+/g, ' ').slice(0, 200);
}

function batch(conn, sql, cancel) {
  return new Promise((resolve, reject) => {
    const rows = [];
    const req = new Request(sql, (err) => (err ? reject(err) : resolve(rows)));
    req.on('row', (cols) => rows.push(cols.map((c) => c.value)));
    conn.execSqlBatch(req);
    if (cancel) setImmediate(() => req.cancel());
  });
}

async function session(conn, id) {
  const [[version]] = await batch(conn, 'SELECT @@VERSION');
  const [[one]] = await batch(conn, 'SELECT 1');
  const [[enc, addr, port]] = await batch(conn,
    'SELECT encrypt_option, client_net_address, client_tcp_port FROM sys.dm_exec_connections WHERE session_id = @@SPID');
  const [[spid]] = await batch(conn, 'SELECT @@SPID');
  await batch(conn, `INSERT INTO writes (id) VALUES (${id})`);
  const ids = (await batch(conn, 'SELECT id FROM writes')).map((r) => String(r[0]));
  // A cancelled request: tedious sends an attention and waits for its
  // acknowledgement; the next request must still work.
  const cancelled = await batch(conn, 'SELECT 1', true).then(() => 'not cancelled', (e) => e.code);
  const [[again]] = await batch(conn, 'SELECT 1');
  const bad = [];
  if (!/Microsoft SQL Server/.test(version)) bad.push('version ' + version);
  if (one !== 1 || again !== 1) bad.push('SELECT 1');
  if (addr !== '127.0.0.1' || !(port > 0)) bad.push('address ' + addr + ':' + port);
  if (!(spid > 0)) bad.push('spid ' + spid);
  if (!ids.includes(String(id))) bad.push('writes ' + ids.join(','));
  if (cancelled !== 'ECANCEL') bad.push('cancel ' + cancelled);
  return bad.length ? 'bad ' + bad.join('; ') : `connected ${enc} ${port}`;
}

let timeouts = 0;

function run(c) {
  if (timeouts >= 2) return Promise.resolve('refused skipped (tedious timed out twice already)');
  return new Promise((resolve) => {
    let done = false;
    const finish = (s) => { if (!done) { done = true; clearTimeout(timer); conn.close(); resolve(s); } };
    const options = {
      port: c.port, database: 'master', connectTimeout: 5000, requestTimeout: 5000,
      encrypt: c.encrypt === 'strict' ? 'strict' : c.encrypt === 'true', trustServerCertificate: c.trust === 'true',
    };
    if (c.ca !== '-') options.cryptoCredentialsDetails = { ca: fs.readFileSync(c.ca) };
    const conn = new Connection({ server: 'localhost', authentication: { type: 'default', options: { userName: user, password } }, options });
    const timer = setTimeout(() => { timeouts++; finish('refused timeout'); }, 15000);
    const refused = (err) => {
      const r = reason(err);
      if (r === 'timeout') timeouts++;
      finish('refused ' + r);
    };
    conn.on('error', refused);
    conn.connect((err) => {
      if (err) return refused(err);
      session(conn, c.id).then(finish, (e) => finish('bad ' + e.message));
    });
  });
}

(async () => {
  const lines = fs.readFileSync(0, 'utf8').split('\n').filter(Boolean);
  for (const line of lines) {
    const [id, port, encrypt, trust, ca] = line.split(' ');
    console.log(id + ' ' + (await run({ id: Number(id), port: Number(port), encrypt, trust, ca })));
  }
})();
EOF

# --- run ----------------------------------------------------------------------
expected >"$work/expected"
: >"$work/tedious.in"
: >"$work/freetds.res"
n=0
while read -r scenario mode _; do
  n=$((n + 1))
  base=${scenario%-strict}
  if [ "$base" = "$scenario" ] && [ -n "$(freetds_settings "$mode")" ]; then
    printf '%s %s\n' "$n" "$(run_freetds $((1000 + n)) "$base" "$mode")" >>"$work/freetds.res"
  fi
  settings=$(tedious_settings "$scenario" "$mode")
  if [ -n "$settings" ]; then
    printf '%s %s %s\n' $((2000 + n)) "$(port_of "$base")" "$settings" >>"$work/tedious.in"
  fi
done <"$work/expected"
NODE_PATH=$tedious_dir/node_modules timeout -k 5 180 node "$work/peer.js" "$user" "$password" \
  <"$work/tedious.in" >"$work/tedious.res" 2>"$work/tedious.err" || {
  echo "tds-peers: the tedious run failed:" >&2
  cat "$work/tedious.err" >&2
}
stop_server
if [ "$server_rc" != 0 ]; then
  cat "$work/server.err" >&2
  echo "tds-peers: tdsserve exited with status $server_rc" >&2
  exit 1
fi

# --- compare --------------------------------------------------------------------
# A connected cell reads its TLS version off the server's line for the session
# whose client port the client saw in sys.dm_exec_connections.
outcome() { # SCENARIO RESULT... -> the table's word
  local scenario=$1 kind=$2 enc=${3:-} port=${4:-}
  case $kind in
    connected)
      local line tls encryption
      line=$(awk -v s="$scenario" -v r="remote=127.0.0.1:$port" \
        '$1 == "session" && index($2, s "-") == 1 && $0 ~ (" " r " ") {print; exit}' "$work/server.out")
      tls=$(sed -n 's/.* tls=TLSv\([0-9.]*\) .*/\1/p' <<<"$line")
      encryption=$(sed -n 's/.* encryption=\([a-z-]*\) .*/\1/p' <<<"$line")
      case $enc/$encryption in
        TRUE/full | TRUE/strict) echo "TLS$tls" ;;
        FALSE/none) echo plain ;;
        FALSE/login-only) echo "login-TLS$tls" ;;
        *) echo "encrypt_option=$enc,server:${encryption:-no-session}" ;;
      esac
      ;;
    refused) echo "$enc" ;;
    *) echo "bad" ;;
  esac
}
fail=0
table=$(
  printf '%-10s %-16s %-14s %-15s %-15s\n' scenario mode mssqlssl "FreeTDS" "tedious"
  n=0
  while read -r scenario mode want_go want_ft want_td; do
    n=$((n + 1))
    base=${scenario%-strict}
    got_ft=n/a got_td=n/a mark=""
    res=$(awk -v n="$n" '$1 == n {$1 = ""; print substr($0, 2); exit}' "$work/freetds.res")
    read -r -a words <<<"$res"
    [ -z "$res" ] || got_ft=$(outcome "$base" "${words[@]}")
    res=$(awk -v n=$((2000 + n)) '$1 == n {$1 = ""; print substr($0, 2); exit}' "$work/tedious.res")
    read -r -a words <<<"$res"
    if [ -n "$res" ]; then
      got_td=$(outcome "$base" "${words[@]}")
    elif [ -n "$(tedious_settings "$scenario" "$mode")" ]; then
      got_td="no-result"
    fi
    [ "$got_ft" = "$want_ft" ] || mark="$mark  FreeTDS: want $want_ft ($(awk -v n="$n" '$1 == n' "$work/freetds.res"))"
    [ "$got_td" = "$want_td" ] || mark="$mark  tedious: want $want_td ($(awk -v n=$((2000 + n)) '$1 == n' "$work/tedious.res"))"
    printf '%-10s %-16s %-14s %-15s %-15s%s\n' "$scenario" "$mode" "$want_go" "$got_ft" "$got_td" "${mark:+  <-- DIFFERS:$mark}"
  done <"$work/expected"
)
echo "$table"
if grep -q 'DIFFERS' <<<"$table"; then
  fail=1
fi

# Every session: nothing the server could not answer, no TLS 1.3 inside
# PRELOGIN, TLS 1.3 with ALPN tds/8.0 in strict mode.
bad_sessions=$(awk '$1 == "session" && ($0 ~ / unsupported=[1-9]/ ||
  ($0 ~ / strict=false / && $0 ~ / tls=TLSv1\.3 /) ||
  ($0 ~ / strict=true / && $0 ~ / login=true / && ($0 !~ / tls=TLSv1\.3 / || $0 !~ / alpn=tds\/8\.0 /)))' "$work/server.out")
if [ -n "$bad_sessions" ]; then
  fail=1
  echo "tds-peers: sessions the server got wrong:"
  echo "$bad_sessions"
fi
sessions=$(grep -c '^session ' "$work/server.out" || true)
echo
echo "tds-peers: FreeTDS $freetds_version (tsql), tedious $TEDIOUS_VERSION on Node.js $node_version;" \
  "$sessions sessions in $(($(date +%s) - start)) s"
if [ "$fail" != 0 ]; then
  echo "tds-peers: FAILED (server log: the session lines above; rerun with TDSDUMP to see FreeTDS's side)" >&2
  exit 1
fi
echo "tds-peers: all cells as expected"
