#!/usr/bin/env bash
# Runs clockworks on this machine: PostgreSQL and RabbitMQ found or started, the database
# created and migrated, then the api and two workers (release builds) in the foreground
# until Ctrl-C. Logs go to .run/*.log. Watch fired events from another terminal with
#   target/release/clockworks-worker tail --namespace <namespace>
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/clockworks}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
workers=${CLOCKWORKS_WORKERS:-2}

cargo build --release -p clockworks-api -p clockworks-worker

database=${DATABASE_URL##*/}
database=${database%%\?*}
if [ -z "$(psql "${DATABASE_URL%/*}/postgres" -Atqc \
    "select 1 from pg_database where datname = '$database'")" ]; then
    log "creating database $database"
    psql "${DATABASE_URL%/*}/postgres" -qc "create database \"$database\""
fi
target/release/clockworks-api migrate

mkdir -p .run
pids=()
stop() {
    log "stopping"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait
}
trap stop INT TERM EXIT

target/release/clockworks-api serve >.run/api.log 2>&1 &
pids+=($!)
for n in $(seq 1 "$workers"); do
    CLOCKWORKS_WORKER_ADMIN_LISTEN=127.0.0.1:$((9090 + n)) \
        target/release/clockworks-worker run >".run/worker-$n.log" 2>&1 &
    pids+=($!)
done

for _ in $(seq 1 100); do
    curl -fs http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break
    sleep 0.1
done
cat <<TEXT

clockworks is running (Ctrl-C stops it):
  api      http://127.0.0.1:8080   (metrics http://127.0.0.1:9090/metrics)
  workers  $workers, metrics on http://127.0.0.1:9091/metrics ...
  logs     .run/api.log, .run/worker-*.log

Create a key:    target/release/clockworks-api keys create --namespace demo \\
                     --scopes timers:read,timers:write
Watch fires:     target/release/clockworks-worker tail --namespace demo
TEXT
wait -n "${pids[@]}" || true
log "a process exited; see .run/*.log"
