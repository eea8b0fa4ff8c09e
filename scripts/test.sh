#!/usr/bin/env bash
# Runs every test of clockworks against real PostgreSQL and RabbitMQ on this machine,
# starting them first if they are not answering.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services

# Databases that earlier, interrupted test runs left behind.
psql -h 127.0.0.1 -U postgres -d postgres -Atqc \
    "select datname from pg_database where datname like 'cw\_test\_%'" |
    while read -r name; do
        psql -h 127.0.0.1 -U postgres -d postgres -qc "drop database if exists $name with (force)"
    done

# The Python consumer example's AMQP client, in a virtualenv of its own under target/.
if ! target/python/bin/python -c 'import pika' 2>/dev/null; then
    python3 -m venv target/python && target/python/bin/pip install -q --disable-pip-version-check 'pika>=1.3,<2'
fi

# The black-box tests run the real binaries: build them before any test starts.
cargo build --workspace --bins --tests

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
