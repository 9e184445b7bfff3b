#!/usr/bin/env bash
# Make sure Debian's valgrind (callgrind and callgrind_control) is installed:
# benchmarks/revisions.py counts a live server's instructions with it, and
# the benchmark smoke tests run that mode once.
set -euo pipefail
. "$(dirname "$0")/debian-package.sh"

have() { command -v valgrind >/dev/null 2>&1 && command -v callgrind_control >/dev/null 2>&1; }

if have || { debian_install valgrind && have; }; then
  echo "valgrind: $(valgrind --version)"
  exit 0
fi
echo "valgrind: not installed; install Debian's valgrind package (apt-get install valgrind)" >&2
exit 1
