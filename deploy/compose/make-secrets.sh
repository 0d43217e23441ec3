#!/usr/bin/env bash
# Create the secret files compose.yaml reads (once; existing files are kept, modes are fixed).
# The database URL embeds the PostgreSQL password, so both come from one random value (and the
# broker URL the Redis password).
#
# Who can read them. Without Swarm, Compose bind-mounts each file secret at /run/secrets/<name>
# with the host file's owner and mode (the `uid`/`gid`/`mode` of the long syntax apply only
# under Swarm). The containers run as different users (uid 10001 for Enclave, 1000 for Qdrant,
# 999 for PostgreSQL after its entrypoint drops root and for Redis, root for the LLM servers),
# so a file only its host owner may read (0600) is unreadable in every non-root container.
# Hence:
#   secrets/        0700, owned by you: no other host user can reach the files;
#   secrets/<name>  0644: readable inside the one container that mounts it, whatever its uid
#                   (the bind mount exposes the file, not the 0700 directory above it).
# Each container mounts only the secrets it needs (compose.yaml), as Swarm would (its default
# mode, 0444, is world-readable as well).
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 0700 secrets
rand() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
[ -s secrets/postgres_password ] || rand > secrets/postgres_password
[ -s secrets/enclave_database_url ] ||
  printf 'postgresql://enclave:%s@postgres:5432/enclave\n' "$(cat secrets/postgres_password)" \
    > secrets/enclave_database_url
# The broker URL embeds the Redis password the same way.
[ -s secrets/redis_password ] || rand > secrets/redis_password
[ -s secrets/enclave_broker_url ] ||
  printf 'redis://:%s@redis:6379/0\n' "$(cat secrets/redis_password)" > secrets/enclave_broker_url
[ -s secrets/qdrant_api_key ] || rand > secrets/qdrant_api_key
[ -s secrets/llm_api_key ] || rand > secrets/llm_api_key
# Streamlit's own secrets: the cookie that keeps an OIDC sign-in (st.login) is signed with
# cookie_secret. For ui.auth = "oidc" fill in the [auth] keys of your identity provider
# (docs/ui.md); with local accounts the file is read and unused.
[ -s secrets/streamlit_secrets.toml ] || cat > secrets/streamlit_secrets.toml <<EOF
[auth]
cookie_secret = "$(rand)"
# redirect_uri = "https://enclave.example.internal/oauth2callback"
# client_id = "enclave"
# client_secret = "..."
# server_metadata_url = "https://idp.example.internal/realms/corp/.well-known/openid-configuration"
EOF
chmod 0644 secrets/postgres_password secrets/enclave_database_url secrets/redis_password \
  secrets/enclave_broker_url secrets/qdrant_api_key secrets/llm_api_key \
  secrets/streamlit_secrets.toml
ls -ld secrets
ls -l secrets
