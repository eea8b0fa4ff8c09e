#!/usr/bin/env bash
# Runs one clockworks benchmark on this machine (see docs/benchmarks.md): a fresh database,
# release builds of the api, the workers and the load generator, then `loadgen <mode>` against
# them. The generator's JSON report goes to standard output; its progress, the peak resident
# memory of each server process (sampled every 0.5 s during the run) and the rows and size of
# the timers and fires tables (sampled every 30 s) to standard error. Logs, the report and the
# samples are kept in .run/bench/.
#
# Usage: scripts/bench.sh burst|steady|ingest [loadgen args...]
# Environment: CLOCKWORKS_BENCH_WORKERS, the number of workers (1 to 9, default 2); any other
# CLOCKWORKS_* setting (CLOCKWORKS_COMPLETED_TIMER_RETENTION, say) reaches the api and workers.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: scripts/bench.sh burst|steady|ingest [loadgen args...]"
mode=${1:-}
case "$mode" in
    burst | steady | ingest) shift ;;
    *)
        echo "$usage" >&2
        exit 2
        ;;
esac
workers=${CLOCKWORKS_BENCH_WORKERS:-2}
if ! [[ "$workers" =~ ^[1-9]$ ]]; then
    echo "CLOCKWORKS_BENCH_WORKERS must be 1 to 9: worker n's admin port is 1909n" >&2
    exit 2
fi

source scripts/services.sh
ensure_services
log() { printf '[bench] %s\n' "$*" >&2; }

server=postgres://postgres@127.0.0.1:5432
database=clockworks_bench
namespace=bench
exchange=clockworks.bench
api_listen=127.0.0.1:18080
api_admin_listen=127.0.0.1:19090
export DATABASE_URL=$server/$database
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
out=.run/bench
# How often resident memory is sampled, in seconds.
sample_secs=0.5
# How often the tables' sizes are sampled, in seconds.
table_sample_secs=30
# How long a server may take to become ready, in tenths of a second.
ready_tenths=300

cargo build --release -p clockworks-api -p clockworks-worker -p clockworks-tests --bins
mkdir -p "$out"

log "creating database $database afresh"
psql "$server/postgres" -qc "drop database if exists $database with (force)"
psql "$server/postgres" -qc "create database $database"
target/release/clockworks-api migrate >/dev/null

pids=()
names=()
loadgen=
sampler=
stop() {
    if [ -n "$loadgen" ]; then kill -TERM "$loadgen" 2>/dev/null || true; fi
    if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
    if [ ${#pids[@]} -gt 0 ]; then
        log "stopping the api and the workers"
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
}
trap stop EXIT
trap 'exit 130' INT TERM

wait_ready() {
    local name=$1 url=$2
    for _ in $(seq 1 "$ready_tenths"); do
        curl -fs "$url" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    log "$name did not become ready; see $out/$name.log"
    return 1
}

CLOCKWORKS_API_LISTEN=$api_listen CLOCKWORKS_API_ADMIN_LISTEN=$api_admin_listen \
    target/release/clockworks-api serve >"$out/api.log" 2>&1 &
pids+=($!)
names+=(api)
for n in $(seq 1 "$workers"); do
    CLOCKWORKS_WORKER_ADMIN_LISTEN=127.0.0.1:1909$n CLOCKWORKS_EXCHANGE=$exchange \
        target/release/clockworks-worker run >"$out/worker-$n.log" 2>&1 &
    pids+=($!)
    names+=("worker-$n")
done
wait_ready api "http://$api_admin_listen/readyz"
for n in $(seq 1 "$workers"); do
    # A ready worker has declared the exchange the generator binds its queue to.
    wait_ready "worker-$n" "http://127.0.0.1:1909$n/readyz"
done

key=$(target/release/clockworks-api keys create --namespace "$namespace" \
    --scopes timers:read,timers:write --name loadgen 2>>"$out/api.log" | tail -n 1)

log "running loadgen $mode with $workers workers"
# The key goes through the environment, so it does not show in the process list.
CLOCKWORKS_BENCH_KEY=$key target/release/loadgen "$mode" \
    --api-url "http://$api_listen" --amqp-url "$AMQP_URL" --exchange "$exchange" \
    --namespace "$namespace" "$@" >"$out/$mode.json" &
loadgen=$!

# One line per table and sample, every $table_sample_secs s: seconds since start, table,
# live rows, dead rows and size on disk with indexes in KiB.
(
    started=$SECONDS
    while true; do
        psql "$DATABASE_URL" -AtF ' ' -c "
            select $((SECONDS - started)), relname, n_live_tup, n_dead_tup,
                   pg_total_relation_size(relid) / 1024
            from pg_stat_user_tables
            where relname in ('timers', 'fires')
            order by relname" 2>/dev/null || true
        sleep "$table_sample_secs"
    done
) >"$out/$mode-tables.txt" &
sampler=$!

# One line per process and sample: its name and VmRSS in KiB, until the generator exits.
while kill -0 "$loadgen" 2>/dev/null; do
    for i in "${!pids[@]}"; do
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/${pids[$i]}/status" 2>/dev/null || true)
        if [ -n "$rss" ]; then echo "${names[$i]} $rss"; fi
    done
    sleep "$sample_secs"
done >"$out/$mode-rss.txt"
status=0
wait "$loadgen" || status=$?
loadgen=
kill "$sampler" 2>/dev/null || true
sampler=

cat "$out/$mode.json"
awk '
    $2 > peak[$1] { peak[$1] = $2 }
    END {
        for (name in peak) printf "max resident memory: %-9s %8.1f MiB\n", name, peak[name] / 1024
    }
' "$out/$mode-rss.txt" | sort >&2
awk '
    { rows[$2] = rows[$2] sprintf(" %ds:%d", $1, $3); }
    $5 > peak[$2] { peak[$2] = $5 }
    END {
        for (table in rows) {
            printf "table %-6s max %.1f MiB; live rows by time:%s\n", table, peak[table] / 1024,
                rows[table]
        }
    }
' "$out/$mode-tables.txt" | sort >&2
if [ "$status" -ne 0 ]; then
    log "loadgen exited with status $status; logs in $out/"
fi
exit "$status"
