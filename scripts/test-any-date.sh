#!/usr/bin/env bash
# The suite again with the whole process tree's clock moved ahead by libfaketime (Debian's
# faketime; a year unless FAKETIME says otherwise), the PostgreSQL server on the real clock.
# A test that passes today and fails here depends on the day it runs: a defect.
#
# What stays on the real clock: the PostgreSQL server (not our child), Playwright's driver
# (node) and Chromium, which spin on a faked clock (FAKETIME_SKIP_CMDS); and in every process
# the monotonic clock (FAKETIME_DONT_FAKE_MONOTONIC: Python's timed waits reach the kernel
# on it untranslated). scripts/faketime/monotonic_sleep.c works around libfaketime 0.9.10's
# handling of absolute monotonic sleeps, which Python 3.11's time.sleep uses.
set -euo pipefail
cd "$(dirname "$0")/.."

library=$(dpkg -L libfaketime 2>/dev/null | grep '/libfaketime\.so\.1$' | head -n 1)
[ -n "$library" ] || { echo "test-any-date: libfaketime is missing (scripts/ensure-test-env.sh)" >&2; exit 1; }
shim=.tools/faketime/monotonic_sleep.so
source=scripts/faketime/monotonic_sleep.c
if [ ! -f "$shim" ] || [ "$source" -nt "$shim" ]; then
  mkdir -p "$(dirname "$shim")"
  cc -shared -fPIC -O2 -o "$shim" "$source" -ldl
fi

export FAKETIME="${FAKETIME:-+365d}"
export FAKETIME_DONT_FAKE_MONOTONIC=1
export FAKETIME_SKIP_CMDS="node,chromium"
export LD_PRELOAD="$PWD/$shim $library"
.venv/bin/python - <<'PY'
import time
from datetime import UTC, datetime

moved = datetime.now(UTC)
time.sleep(0.01)  # the work-around holds: a plain sleep works under the moved clock
print(f"test-any-date: the clock says {moved:%Y-%m-%d %H:%M} UTC")
PY
exec .venv/bin/python -m pytest --numprocesses=auto --maxprocesses=4 "$@"
