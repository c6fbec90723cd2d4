#!/usr/bin/env bash
# Installs the real servers and clients that the integration tests drive
# (test/integration-*.test.ts, test/proxy-protocol-haproxy.test.ts): Redis, MariaDB, PostgreSQL and HAProxy from Debian 12.
#
# Which package gives what (checked with dpkg -S on Debian 12 "bookworm"):
#   redis-tools           redis-server, redis-benchmark, redis-cli
#   redis-server          only the systemd unit and config; pulls in redis-tools
#   mariadb-server-core   mariadbd, mariadb-install-db
#   mariadb-client-core   mariadb
#   mariadb-client        mariadb-admin, mysqlslap (npm run bench:mysql)
#   mariadb-server        service scripts; creates the mysql user; the auth_ed25519 plugin (integration-mysql-login)
#   postgresql-15         initdb, pg_ctl, postgres, pgbench (in /usr/lib/postgresql/15/bin)
#   postgresql-client-15  psql, pg_isready
#   haproxy               haproxy (2.6, in /usr/sbin)
#   tcpdump               tcpdump (in /usr/bin): captures replayed by test/replay-redis.test.ts
#   tshark                tshark (Wireshark's CLI): reads tcptee's recordings in test/record.test.ts
#   openssl               openssl: test certificates (test/support/certs.ts: tls-cli, postgres-tls, mysql-tls)
#   chromium              chromium (headless, driven by puppeteer-core in test/status-page-browser.test.ts)
#   prometheus            promtool (test/deploy-files.test.ts checks and unit-tests deploy/prometheus/alerts.yaml)
#
# The packages may start system services (a "main" PostgreSQL cluster on 5432,
# mariadb on 3306, redis on 6379, haproxy with the default config). The tests never use them: each test starts
# its own instances on free loopback ports with temporary data directories.
#
# Idempotent: when every binary is already present, apt is not touched.
set -euo pipefail

pg_bin_dir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    if [[ -x "$d/initdb" && -x "$d/pgbench" && -x "$d/psql" && -x "$d/pg_isready" ]]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

have_all() {
  local b
  for b in redis-server redis-benchmark redis-cli mariadbd mariadb-install-db mariadb mariadb-admin mysqlslap haproxy chromium promtool tcpdump tshark openssl; do
    command -v "$b" >/dev/null 2>&1 || [[ -x "/usr/sbin/$b" ]] || return 1
  done
  [[ -e /usr/lib/mysql/plugin/auth_ed25519.so ]] || return 1
  pg_bin_dir >/dev/null
}

if have_all; then
  echo "install-deps: redis, mariadb, postgresql, haproxy, chromium, promtool, tcpdump and tshark binaries already present; skipping apt"
  exit 0
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends \
  redis-server redis-tools \
  mariadb-server mariadb-server-core mariadb-client mariadb-client-core \
  postgresql-15 postgresql-client-15 \
  haproxy \
  chromium \
  prometheus \
  tcpdump tshark \
  openssl

have_all || { echo "install-deps: binaries still missing after apt-get install" >&2; exit 1; }
echo "install-deps: done"
