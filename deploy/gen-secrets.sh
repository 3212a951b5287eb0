#!/bin/sh
# Writes what docker-compose.yml needs and git must never see:
#   .env                          passwords, the JWT secret, the events API key (random)
#   deploy/secrets/internal_token.pem / .pub   the gateway's Ed25519 key pair
# Existing files are kept, so running it twice changes nothing. Needs openssl.
set -eu
cd "$(dirname "$0")/.."

rand() { openssl rand -hex 24; }

if [ -e .env ]; then
    echo ".env exists; keeping it"
else
    umask 077
    # Every empty `NAME=` line of the example gets its own random value.
    while IFS= read -r line; do
        case $line in
            [A-Z]*=)
                name=${line%=}
                case $name in
                    EVENTS_API_KEY) value="ffk_$(openssl rand -hex 32)" ;;
                    GATEWAY_JWT_SECRET) value=$(openssl rand -hex 32) ;;
                    *) value=$(rand) ;;
                esac
                printf '%s=%s\n' "$name" "$value"
                ;;
            *) printf '%s\n' "$line" ;;
        esac
    done < deploy/.env.example > .env.tmp
    mv .env.tmp .env
    echo "wrote .env (admin login: see BOOTSTRAP_ADMIN_EMAIL / BOOTSTRAP_ADMIN_PASSWORD)"
fi

mkdir -p deploy/secrets
if [ -e deploy/secrets/internal_token.pem ]; then
    echo "deploy/secrets/internal_token.pem exists; keeping it"
else
    openssl genpkey -algorithm ed25519 -out deploy/secrets/internal_token.pem
    openssl pkey -in deploy/secrets/internal_token.pem -pubout -out deploy/secrets/internal_token.pub
    # Compose mounts these files as they are, and the apps run as uid 10001, not as you: the
    # files must be readable by others; the folder keeps other local users out.
    chmod 644 deploy/secrets/internal_token.pem deploy/secrets/internal_token.pub
    chmod 700 deploy/secrets
    echo "wrote deploy/secrets/internal_token.pem and .pub"
fi
