#!/usr/bin/env bash
# Make sure a Redis server answers on 127.0.0.1:${REDIS_PORT:-6379}.
# Starts a local, non-persistent redis-server if none answers, installing the
# Debian package first when it is missing and we are allowed to (root + apt).
set -euo pipefail
port="${REDIS_PORT:-6379}"

ping() {
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG
  else
    # bash's /dev/tcp: send PING, expect +PONG.
    exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    local reply; read -r -t 2 reply <&3 || true; exec 3>&-
    [[ "$reply" == +PONG* ]]
  fi
}

if ping; then echo "redis: reachable on 127.0.0.1:$port"; exit 0; fi

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "redis: installing redis-server (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    echo "redis: not reachable on 127.0.0.1:$port and redis-server is not installed" >&2
    echo "       install it (apt-get install redis-server) or start Redis yourself" >&2
    exit 1
  fi
fi

echo "redis: starting redis-server on 127.0.0.1:$port"
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
  --dir /tmp --logfile "/tmp/chanx-redis-$port.log"
for _ in $(seq 1 50); do ping && { echo "redis: up"; exit 0; }; sleep 0.1; done
echo "redis: did not come up; see /tmp/chanx-redis-$port.log" >&2
exit 1
