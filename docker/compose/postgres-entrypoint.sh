#!/bin/sh
# initdb on first start (password from POSTGRES_PASSWORD, scram), then run the server in the foreground.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
data=/var/lib/f5vi-pg/data
if [ ! -s "$data/PG_VERSION" ]; then
  pw=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" >"$pw"
  "$bin/initdb" -D "$data" -U "${POSTGRES_USER:-f5vi}" --pwfile="$pw" -A scram-sha-256 -E UTF8 >/dev/null
  rm -f "$pw"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$data/pg_hba.conf"
  "$bin/pg_ctl" -D "$data" -o "-c listen_addresses=127.0.0.1 -p ${PGPORT:-5432}" -w start >/dev/null
  PGPASSWORD="$POSTGRES_PASSWORD" "$bin/createdb" -h 127.0.0.1 -p "${PGPORT:-5432}" -U "${POSTGRES_USER:-f5vi}" "${POSTGRES_DB:-f5vi}"
  "$bin/pg_ctl" -D "$data" -w stop >/dev/null
fi
exec "$bin/postgres" -D "$data" -c listen_addresses="${PG_LISTEN:-*}" -p "${PGPORT:-5432}"
