#!/usr/bin/env bash
# Runs clockworks on this machine: PostgreSQL and RabbitMQ found or started, the database
# created and migrated, then the api and two workers (release builds) in the foreground
# until Ctrl-C. Logs go to .run/*.log. Watch fired events from another terminal with
#   target/release/clockworks-worker tail --namespace <namespace>
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services
log() { printf '[run] %s\n' "$*" >&2; }

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
api_listen=${CLOCKWORKS_API_LISTEN:-127.0.0.1:8080}
api_admin_listen=${CLOCKWORKS_API_ADMIN_LISTEN:-127.0.0.1:9090}
ports=("${api_listen##*:}" "${api_admin_listen##*:}")
for n in $(seq 1 "$workers"); do ports+=($((9090 + n))); done
for port in "${ports[@]}"; do
    if timeout 1 bash -c "</dev/tcp/127.0.0.1/$port" 2>/dev/null; then
        log "port $port is already taken (is clockworks already running?); stop that first"
        exit 1
    fi
done

pids=()
stopping=
stop() {
    stopping=1
    log "stopping the api and the workers"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM
trap '[ -n "$stopping" ] || stop' EXIT

# Each start appends to the logs, under a line that says when it started.
banner="=== $(date -u +%Y-%m-%dT%H:%M:%SZ) scripts/run.sh"
echo "$banner" >>.run/api.log
CLOCKWORKS_API_LISTEN=$api_listen CLOCKWORKS_API_ADMIN_LISTEN=$api_admin_listen \
    target/release/clockworks-api serve >>.run/api.log 2>&1 &
pids+=($!)
for n in $(seq 1 "$workers"); do
    echo "$banner" >>".run/worker-$n.log"
    CLOCKWORKS_WORKER_ADMIN_LISTEN=127.0.0.1:$((9090 + n)) \
        target/release/clockworks-worker run >>".run/worker-$n.log" 2>&1 &
    pids+=($!)
done

# Ready means every process of this run answers on its own admin port.
ready_urls=("http://$api_admin_listen/readyz")
for n in $(seq 1 "$workers"); do ready_urls+=("http://127.0.0.1:$((9090 + n))/readyz"); done
for url in "${ready_urls[@]}"; do
    for _ in $(seq 1 300); do
        curl -fs "$url" >/dev/null 2>&1 && continue 2
        for pid in "${pids[@]}"; do
            if ! kill -0 "$pid" 2>/dev/null; then
                log "a process exited while starting; see the end of .run/api.log and .run/worker-*.log"
                exit 1
            fi
        done
        sleep 0.1
    done
    log "$url did not answer ready within 30 s; see .run/*.log"
    exit 1
done

cat <<TEXT

clockworks is running (Ctrl-C stops it):
  api      http://$api_listen   (metrics http://$api_admin_listen/metrics)
  workers  $workers, metrics on http://127.0.0.1:9091/metrics ...
  logs     .run/api.log, .run/worker-*.log

Create a key:    target/release/clockworks-api keys create --namespace demo \\
                     --scopes timers:read,timers:write
Watch fires:     target/release/clockworks-worker tail --namespace demo
TEXT

# Runs until Ctrl-C or SIGTERM (the trap above), or until one of the processes exits: after
# a stop of its own (status 0) the others are stopped too; after a failure, likewise, and the
# script fails.
status=0
wait -n "${pids[@]}" || status=$?
if [ -z "$stopping" ]; then
    if [ "$status" -eq 0 ]; then
        log "a process was stopped; stopping the others"
        stop
        exit 0
    fi
    log "a process failed (status $status); see the end of .run/api.log and .run/worker-*.log"
    stop
    exit 1
fi
