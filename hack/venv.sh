#!/usr/bin/env bash
# The project's virtualenv, exactly as requirements/dev.txt pins it, and VENV/fetch-gcs as
# requirements/gcs.txt pins it (`make venv` runs this).
#
#   hack/venv.sh VENV                    create VENV from the lock (re-create it when the lock changed)
#   hack/venv.sh --dry-run REPORT VENV   resolve only: pip's JSON report of what it would install
#                                        into REPORT; nothing is installed (tests/unit/test_locks.py)
#
# Every file pip takes must match a hash in the lock (--require-hashes) and be a wheel
# (--only-binary: an sdist would build with whatever setuptools the registry serves that day), and
# nothing is resolved here (--no-deps: the lock is the whole set). A newer release of any package,
# on the index or in PIP_FIND_LINKS, is never considered. The package itself is installed
# editable last, built by the setuptools that the lock pins (--no-build-isolation).
# The interpreter is $PYTHON (default python3); pip is the one its venv module bundles: it only
# fetches and unpacks the hashed files, so its version cannot change what is installed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
lock="$repo/requirements/dev.txt"
python=${PYTHON:-python3}
report=""
if [ "${1:-}" = "--dry-run" ]; then report=$2; shift 2; fi
venv=${1:?usage: hack/venv.sh [--dry-run REPORT] VENV}

pip_args=(install --quiet --disable-pip-version-check --require-hashes --no-deps --only-binary=:all: -r "$lock")

if [ -n "$report" ]; then
  exec "$python" -m pip "${pip_args[@]}" --dry-run --ignore-installed --report "$report"
fi

# A venv made from another lock may hold packages this one drops: start again rather than mend.
want=$(sha256sum "$lock" | cut -d' ' -f1)
stamp="$venv/.lock-sha256"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo ">> $lock changed: re-creating $venv"
  rm -rf "$venv"
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip "${pip_args[@]}"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$repo"
"$venv/bin/python" -m pip check >/dev/null || { "$venv/bin/python" -m pip check >&2; exit 1; }
echo "$want" > "$stamp"

# google-auth for the gcs download step, exactly as requirements/gcs.txt pins it, into
# VENV/fetch-gcs as the image puts it into /opt/llmstage/fetch-gcs: outside site-packages, so
# only llmstage.fetch.gcs, which adds the directory to sys.path, can import it (not the operator,
# whose kubernetes client would import google.auth if it could: requirements/gcs.in). Its
# dependencies beyond the lock (requests, cryptography) are the venv's.
gcs_lock="$repo/requirements/gcs.txt"
gcs_dir="$venv/fetch-gcs"
gcs_want=$(sha256sum "$gcs_lock" | cut -d' ' -f1)
if [ "$(cat "$gcs_dir/.lock-sha256" 2>/dev/null)" != "$gcs_want" ]; then
  rm -rf "$gcs_dir"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
    --only-binary=:all: --target "$gcs_dir" -r "$gcs_lock"
  echo "$gcs_want" > "$gcs_dir/.lock-sha256"
fi
