#!/usr/bin/env bash
# Make sure PostgreSQL accepts connections on 127.0.0.1:${PGPORT:-5432} as user
# postgres without a password (the e2e tests create and drop their own database).
# Starts the local cluster if it is down, installing Debian's package first when
# it is missing and we are allowed to (root + apt).
set -euo pipefail
port="${PGPORT:-5432}"

ready() { pg_isready -q -h 127.0.0.1 -p "$port" 2>/dev/null; }
can_login() { psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1; }

if command -v pg_isready >/dev/null 2>&1 && ready && can_login; then
  echo "postgres: reachable on 127.0.0.1:$port"; exit 0
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "postgres: installing postgresql (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "postgres: not reachable on 127.0.0.1:$port and not installed" >&2
    exit 1
  fi
fi

version=$(ls /etc/postgresql | sort -V | tail -n 1)
hba="/etc/postgresql/$version/main/pg_hba.conf"
# Local test clusters only: trust loopback connections, as this machine's own does.
if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
  sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
fi
echo "postgres: starting cluster $version/main"
pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
  || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
for _ in $(seq 1 100); do ready && can_login && { echo "postgres: up"; exit 0; }; sleep 0.1; done
echo "postgres: did not come up on 127.0.0.1:$port" >&2
exit 1
