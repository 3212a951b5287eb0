#!/usr/bin/env bash
# Gives each login role of 10-roles.sql its password, read from the environment (compose passes
# them from .env). psql quotes the value itself (:'password'), so any character is safe here;
# the same passwords also appear inside DATABASE_URLs, so prefer URL-safe ones (hex or
# base64url, as deploy/gen-secrets.sh makes them).
set -euo pipefail

declare -A roles=(
    [fieldforce_migrator]=DB_PASSWORD_MIGRATOR
    [gateway]=DB_PASSWORD_GATEWAY
    [customers]=DB_PASSWORD_CUSTOMERS
    [visits]=DB_PASSWORD_VISITS
    [opportunities]=DB_PASSWORD_OPPORTUNITIES
    [analytics]=DB_PASSWORD_ANALYTICS
)

for role in "${!roles[@]}"; do
    var=${roles[$role]}
    password=${!var:-}
    if [[ -z $password ]]; then
        echo "20-passwords.sh: $var is empty; role $role would have no password" >&2
        exit 1
    fi
    psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
        --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
        -v role="$role" -v password="$password" <<'SQL'
ALTER ROLE :"role" PASSWORD :'password';
SQL
done
