#!/usr/bin/env bash
# Make sure Debian's prometheus (with promtool) is installed: the telemetry
# e2e tests start their own prometheus on loopback to scrape the demo.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  echo "prometheus: $(prometheus --version 2>&1 | head -1)"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "prometheus: installing the Debian package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq prometheus >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq prometheus >/dev/null; }
  # The package may start its own daemon on :9090; the tests run their own.
  if command -v service >/dev/null 2>&1; then service prometheus stop >/dev/null 2>&1 || true; fi
  pkill -x prometheus >/dev/null 2>&1 || true
  command -v prometheus >/dev/null 2>&1 && exit 0
fi
echo "prometheus: not installed; install Debian's prometheus package (apt-get install prometheus)" >&2
exit 1
