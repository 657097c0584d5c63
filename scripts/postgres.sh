#!/usr/bin/env bash
# Prints a PostgreSQL URL for the tests: the server on 127.0.0.1:5432 when one runs,
# else starts Debian's cluster and makes a superuser role for this user (peer auth on the socket).
set -euo pipefail
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null \
   && psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
    echo "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    exit 0
fi
version="$(ls /etc/postgresql | sort -n | tail -1)"
pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
for _ in $(seq 30); do pg_isready -q && break; sleep 1; done
me="$(id -un)"
su postgres -c "psql -tAc \"select 1 from pg_roles where rolname='$me'\"" | grep -q 1 \
    || su postgres -c "createuser -s $me" >/dev/null
echo "postgresql+psycopg://$me@/postgres?host=/var/run/postgresql"
