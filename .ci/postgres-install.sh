#!/usr/bin/env bash
# PostgreSQL's server programs for the tests (tests/pgserver.py starts and stops the server itself).
# Nothing to do when Debian's package (or MEMSWEEP_PG_BIN, or initdb on PATH) already provides them.
set -euo pipefail
if [ -n "${MEMSWEEP_PG_BIN:-}" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# (The cluster the package creates is not used.)
$SUDO apt-get install -y -q --no-install-recommends postgresql
ls /usr/lib/postgresql/*/bin/initdb
