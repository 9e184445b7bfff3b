#!/usr/bin/env bash
# Make sure Debian's prometheus (with promtool) is installed: the telemetry
# e2e tests start their own prometheus on loopback to scrape the demo.
set -euo pipefail
. "$(dirname "$0")/debian-package.sh"

have() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }

if have; then
  echo "prometheus: $(prometheus --version 2>&1 | head -1)"
  exit 0
fi
if debian_install prometheus; then
  # The package may start its own daemon on :9090; the tests run their own.
  if command -v service >/dev/null 2>&1; then service prometheus stop >/dev/null 2>&1 || true; fi
  pkill -x prometheus >/dev/null 2>&1 || true
  have && exit 0
fi
echo "prometheus: not installed; install Debian's prometheus package (apt-get install prometheus)" >&2
exit 1
