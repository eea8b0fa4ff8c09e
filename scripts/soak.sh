#!/usr/bin/env bash
# Runs the soak test (see docs/operations.md): release builds of the api, the worker and the
# `soak` binary, which then runs the api and the workers itself against a fresh database,
# with proxies in front of PostgreSQL and RabbitMQ that it cuts on a schedule, while it
# creates and deletes timers at a steady rate. Its JSON report goes to standard output and to
# .run/soak/report.json; progress to standard error; the servers' logs to .run/soak/.
# Exits non-zero if a promise was broken (1) or the run could not be made (2).
#
# Usage: scripts/soak.sh [soak args...]   e.g. scripts/soak.sh --duration-secs 600 --rate 200
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/services.sh
ensure_services

out=.run/soak
mkdir -p "$out"
cargo build --release -p clockworks-api -p clockworks-worker
cargo build --release -p clockworks-tests --bin soak

status=0
target/release/soak --log-dir "$out" "$@" >"$out/report.json" || status=$?
cat "$out/report.json"
if [ "$status" -ne 0 ]; then
    printf '[soak] soak exited with status %s; logs in %s/\n' "$status" "$out" >&2
fi
exit "$status"
