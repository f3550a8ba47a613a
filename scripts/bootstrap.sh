#!/usr/bin/env bash
# Set up harness in ./.venv (Python >= 3.12) and run the main job or the tests.
#   bash scripts/bootstrap.sh run [harness tune options]  # set up, then tune storage for the built-in dataset
#   bash scripts/bootstrap.sh test [pytest options]       # set up, then the test suite
# Finds Python >= 3.12 in $PYTHON, python3, python3.13, python3.12, or pyenv's installed versions.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"; shift || true

ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }
find_python() {
  local c
  for c in "${PYTHON:-}" python3 python3.13 python3.12; do
    [ -n "$c" ] && command -v "$c" >/dev/null 2>&1 && ok "$c" && { command -v "$c"; return; }
  done
  if command -v pyenv >/dev/null 2>&1; then
    for c in $(ls -d "$(pyenv root)"/versions/3.1[2-9]* 2>/dev/null | sort -V -r); do
      ok "$c/bin/python" && { echo "$c/bin/python"; return; }
    done
  fi
  echo "bootstrap: error: no Python >= 3.12 found; install one or set PYTHON=/path/to/python3.12" >&2
  exit 2
}

# nginx (with its Lua module, for added latency) serves stores over HTTP for the remote workloads.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light libnginx-mod-http-lua) >/dev/null 2>&1 \
      || echo "bootstrap: warning: could not install nginx; HTTP store points will be skipped" >&2
  else
    echo "bootstrap: note: nginx not found; install nginx (and libnginx-mod-http-lua) for the HTTP store points" >&2
  fi
fi

if [ ! -x .venv/bin/python ] || ! ok .venv/bin/python; then
  rm -rf .venv
  "$(find_python)" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[all,test]"
# s3rver (npm) is the loopback S3 server: ~10x moto's rate on range GETs. Without Node.js, moto is used.
if command -v npm >/dev/null 2>&1; then
  .venv/bin/python -c "from harness.measure.servers import s3rver_path; s3rver_path()" \
    || echo "bootstrap: warning: could not install s3rver from npm; the S3 points use moto" >&2
fi

case "$mode" in
  run)
    .venv/bin/harness datasets fetch pbmc3k >/dev/null
    exec .venv/bin/harness tune "$@" ;;
  test)
    exec .venv/bin/python -m pytest "$@" ;;
  *)
    echo "bootstrap: error: unknown mode '$mode'; use run or test" >&2; exit 2 ;;
esac
