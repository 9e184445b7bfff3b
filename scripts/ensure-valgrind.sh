#!/usr/bin/env bash
# Make sure Debian's valgrind (callgrind and callgrind_control) is installed:
# benchmarks/revisions.py counts a live server's instructions with it, and
# the benchmark smoke tests run that mode once.
set -euo pipefail

if command -v valgrind >/dev/null 2>&1 && command -v callgrind_control >/dev/null 2>&1; then
  echo "valgrind: $(valgrind --version)"
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "valgrind: installing the Debian package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq valgrind >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
  command -v callgrind_control >/dev/null 2>&1 && exit 0
fi
echo "valgrind: not installed; install Debian's valgrind package (apt-get install valgrind)" >&2
exit 1
