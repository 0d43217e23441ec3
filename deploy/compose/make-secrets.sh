#!/usr/bin/env bash
# Create the secret files compose.yaml reads (once; existing files are kept).
# The database URL embeds the PostgreSQL password, so both come from one random value.
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
rand() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
[ -s secrets/postgres_password ] || rand > secrets/postgres_password
[ -s secrets/enclave_database_url ] ||
  printf 'postgresql://enclave:%s@postgres:5432/enclave\n' "$(cat secrets/postgres_password)" \
    > secrets/enclave_database_url
[ -s secrets/qdrant_api_key ] || rand > secrets/qdrant_api_key
[ -s secrets/llm_api_key ] || rand > secrets/llm_api_key
ls -l secrets
