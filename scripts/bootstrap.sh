#!/usr/bin/env bash
# Installs what lifeboat needs on a fresh Linux machine with Python 3.11 and root:
# uv (from PyPI), the project's virtualenv (uv sync), and Debian's redis-server.
# Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -m uv --version >/dev/null 2>&1 && ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv" >&2
  "$PYTHON" -m pip install --quiet --disable-pip-version-check uv
fi
if command -v uv >/dev/null 2>&1; then UV=(uv); else UV=("$PYTHON" -m uv); fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "bootstrap: installing redis-server (Debian)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null
fi

"${UV[@]}" sync --quiet --extra dev --python 3.11
