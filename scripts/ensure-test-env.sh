#!/usr/bin/env bash
# Make sure what the tests talk to is there: a PostgreSQL server on 127.0.0.1:5432
# (trust auth, database "test"), Debian's headless Chromium, faketime and Prism. Installs
# and starts them when missing (needs root, as on the development and CI machines);
# otherwise says what is missing and fails.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "ensure-test-env: need root to run: $*" >&2; return 1; fi; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }

if ! command -v pg_isready >/dev/null || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  echo "ensure-test-env: installing PostgreSQL" >&2
  apt_install postgresql
fi
if ! pg_up; then
  echo "ensure-test-env: starting PostgreSQL" >&2
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up || { echo "ensure-test-env: PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
# Trust auth and a database named "test", as on the development machines.
if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  conf=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n 1)
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust' "$conf"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main reload
  fi
  as_root su postgres -c "psql -tc \"select 1 from pg_database where datname='test'\" | grep -q 1 || createdb test"
fi

if ! command -v faketime >/dev/null; then
  echo "ensure-test-env: installing faketime (the suite a year ahead: make test-any-date)" >&2
  apt_install faketime
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "ensure-test-env: installing Chromium" >&2
  apt_install chromium
fi

# Prism serves Twilio's own OpenAPI description as a local Twilio API (../shared/twilio).
if [ ! -x .tools/prism/node_modules/.bin/prism ]; then
  command -v npm >/dev/null || apt_install nodejs npm
  echo "ensure-test-env: installing Prism (the local Twilio API)" >&2
  npm install --silent --prefix .tools/prism @stoplight/prism-cli@5 >/dev/null
fi
