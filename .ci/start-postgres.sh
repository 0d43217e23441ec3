#!/usr/bin/env bash
# Start the Debian PostgreSQL cluster on loopback and create the test role + database.
# Prints the URL for ENCLAVE_TEST_PG_URL on stdout.
set -euo pipefail
# Only the URL goes to stdout; everything else to stderr.
exec 3>&1 1>&2
ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | grep -q "^$ver main"; then
  pg_createcluster "$ver" main 3>&-
fi
pg_ctlcluster "$ver" main start 3>&- || true
for _ in $(seq 1 30); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 1
done
pg_isready -h 127.0.0.1 -p 5432 >/dev/null
su postgres -c "psql -q -tAc \"SELECT 1 FROM pg_roles WHERE rolname='enclave'\"" | grep -q 1 ||
  su postgres -c "psql -q -c \"CREATE ROLE enclave LOGIN CREATEDB PASSWORD 'enclave'\""
# Tests drop their databases WITH (FORCE); an autovacuum worker on the database is a superuser
# backend, which only a member of pg_signal_backend may terminate.
su postgres -c "psql -q -c 'GRANT pg_signal_backend TO enclave'"
su postgres -c "psql -q -tAc \"SELECT 1 FROM pg_database WHERE datname='enclave_test'\"" | grep -q 1 ||
  su postgres -c "createdb -O enclave enclave_test"
echo "postgresql://enclave:enclave@127.0.0.1:5432/enclave_test" >&3
