#!/usr/bin/env bash
# The machine's part of `make test`: the Debian packages the tests need, installed when
# they are missing and we are root (quietly; nothing happens when all are present), or
# else the one command to run. Python packages come from .venv; PostgreSQL itself is
# found or started by the tests (tests/fixtures/postgres_server.py), which need only the
# server's binaries when nothing answers on 127.0.0.1:5432.
set -euo pipefail

missing=()       # Debian packages to install
# python3 -m venv (make's first step) needs ensurepip, which Debian ships apart.
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
# Chromium and its driver: the review page's browser tests and the README screenshots.
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
# Prometheus: the server runs the rollout tests; promtool checks rules and configs.
{ [ -x /usr/bin/prometheus ] && command -v promtool >/dev/null; } || missing+=(prometheus)
# openssl: test TLS certificates.
command -v openssl >/dev/null || missing+=(openssl)
# kubectl builds the kustomize overlays (tests/deploy). Any kubectl will do; Debian's
# kubernetes-client provides one where none is installed (it would clash with another).
command -v kubectl >/dev/null || missing+=(kubernetes-client)
# PostgreSQL: the machine's server when it answers, else binaries for a throwaway one.
postgres_answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
postgres_binaries() { command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }
postgres_answers || postgres_binaries || missing+=(postgresql)

[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "missing system packages (Debian names): ${missing[*]}; install them with your package manager" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  # One command that works on a bare Debian too: package lists may never have been
  # fetched (a fresh image has none), and sudo is not installed by default.
  install="apt-get update && apt-get install -y ${missing[*]}"
  if command -v sudo >/dev/null; then
    echo "missing system packages; run: sudo sh -c '$install'" >&2
  else
    echo "missing system packages; run (root's password): su -c '$install'" >&2
  fi
  exit 1
fi
echo "installing system packages the tests need: ${missing[*]}"
log=$(mktemp)
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  echo "could not install: ${missing[*]} (apt output above)" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
