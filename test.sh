#!/usr/bin/env bash
# Runs every test suite: unit/integration tests and the spec conformance tests, on SQLite and PostgreSQL.
# Installs what is missing (Debian packages), starts a private PostgreSQL on loopback, stops it afterwards.
# Ends with one line: "N passed, N failed". Exit status is non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

log() { echo "== $*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
need_package() {  # need_package <command-or-file> <debian-package>
  if [ -e "$1" ] || command -v "$1" >/dev/null 2>&1; then return; fi
  log "installing $2"
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

need_package /usr/lib/x86_64-linux-gnu/libsodium.so.23 libsodium23
# The second crypto client of the E2EE interop test: matrix-nio with libolm, for Debian's python3.
need_package /usr/lib/python3/dist-packages/nio python3-matrix-nio
need_package /usr/lib/python3/dist-packages/olm python3-olm
# The federation interop script (spec-tests/python/federation_interop.py) signs device keys with PyNaCl.
need_package /usr/lib/python3/dist-packages/nacl python3-nacl
# Email tests start a real SMTP server (spec-tests/python/smtp_sink.py) that writes the mail it receives to a folder.
need_package /usr/lib/python3/dist-packages/aiosmtpd python3-aiosmtpd
# LDAP tests start private slapd instances (spec-tests/SpecTests/Harness/TestLdapServer.cs); ldapadd seeds them.
need_package /usr/sbin/slapd slapd
need_package /usr/bin/ldapadd ldap-utils
# The calendar bridge's tests start private Radicale CalDAV servers (spec-tests/SpecTests/Harness/TestCalDavServer.cs).
need_package /usr/bin/radicale radicale
# The admin API's real client: synadm, the Synapse admin CLI (spec-tests/SpecTests/AdminApiSynadmTests.cs).
need_package /usr/bin/synadm synadm
# Web pages (single sign-on, the OAuth 2.0 login page) are driven by Debian's Chromium through npm playwright-core.
need_package /usr/bin/chromium chromium
# The scale-out tests (spec-tests/SpecTests/ScaleOutTests.cs) start a private Redis and HAProxy with contrib/haproxy/homeserver.cfg.
need_package /usr/bin/redis-server redis-server
need_package /usr/sbin/haproxy haproxy
# Thumbnails: the server calls libvips through P/Invoke (src/Homeserver/Media/Vips.cs).
need_package /usr/lib/x86_64-linux-gnu/libvips.so.42 libvips42
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$PG_BIN" ]; then
  need_package /usr/lib/postgresql/15/bin/initdb postgresql-15
  PG_BIN=/usr/lib/postgresql/15/bin
fi

# PostgreSQL refuses to run as root: run it as an unprivileged user.
PG_USER=$(id -un)
if [ "$(id -u)" = 0 ]; then
  PG_USER=postgres
  id "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home "$PG_USER"
fi
run_pg() { if [ "$(id -u)" = 0 ]; then (cd /tmp && runuser -u "$PG_USER" -- "$@"); else "$@"; fi; }

PG_DIR=$(mktemp -d /tmp/hs-test-pg.XXXXXX)
chmod 755 "$PG_DIR"
[ "$(id -u)" = 0 ] && chown "$PG_USER" "$PG_DIR"
PG_PORT=$(( 20000 + RANDOM % 20000 ))
stop_pg() {
  run_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1
  rm -rf "$PG_DIR"
}
trap stop_pg EXIT

log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
run_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
  || { cat "$PG_DIR/initdb.log"; echo "0 passed, 1 failed"; exit 1; }
run_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=on -c max_connections=300" start >/dev/null \
  || { cat "$PG_DIR/server.log"; echo "0 passed, 1 failed"; exit 1; }
export HS_TEST_POSTGRES="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=postgres"

log "building"
if ! dotnet build Homeserver.sln -c Release -nologo -v quiet 2>&1 | tail -n 20; then
  echo "0 passed, 1 failed"; exit 1
fi
export HOMESERVER_DLL="$ROOT/src/Homeserver/bin/Release/net10.0/Homeserver.dll"

# The real-client scenarios use matrix-js-sdk and matrix-bot-sdk, pinned by spec-tests/js/package-lock.json.
if [ ! -f "$ROOT/spec-tests/js/node_modules/.package-lock.json" ] \
   || [ "$ROOT/spec-tests/js/package-lock.json" -nt "$ROOT/spec-tests/js/node_modules/.package-lock.json" ]; then
  log "installing the npm packages of spec-tests/js"
  (cd "$ROOT/spec-tests/js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1) \
    || { echo "npm ci failed in spec-tests/js"; echo "0 passed, 1 failed"; exit 1; }
fi

passed=0; failed=0
for project in tests/*/*.csproj spec-tests/*/*.csproj; do
  log "testing $project"
  out=$(dotnet test "$project" -c Release --no-build -nologo 2>&1)
  # Each failure's name and message (up to 40 lines, without the stack trace), and the project's totals.
  echo "$out" | awk '/^ *(Passed!|Failed!|Failed )/ { print; next } /Error Message:/ { show = 1; n = 0 } /Stack Trace:/ { show = 0 }
                     show && n++ < 40 { print }' | head -n 400
  line=$(echo "$out" | grep -E '(Passed|Failed)! +- +Failed: +[0-9]+, Passed: +[0-9]+' | tail -n 1)
  if [ -z "$line" ]; then
    echo "$out" | tail -n 30
    failed=$((failed + 1))
    continue
  fi
  f=$(echo "$line" | sed -E 's/.*Failed: +([0-9]+),.*/\1/')
  p=$(echo "$line" | sed -E 's/.*Passed: +([0-9]+),.*/\1/')
  passed=$((passed + p)); failed=$((failed + f))
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
