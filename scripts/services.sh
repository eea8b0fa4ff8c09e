#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ answer on 127.0.0.1, starting (and, on a Debian machine
# without them, installing) the local servers when they do not. Sourced by run.sh and test.sh;
# also runnable on its own.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

postgres_answers() {
    pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null
}

rabbitmq_answers() {
    timeout 2 bash -c '</dev/tcp/127.0.0.1/5672' 2>/dev/null
}

install_if_missing() {
    local command=$1 package=$2
    if ! command -v "$command" >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
            log "installing $package"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
        else
            log "$command is missing: install $package, or point DATABASE_URL/AMQP_URL elsewhere"
            return 1
        fi
    fi
}

ensure_postgres() {
    if postgres_answers; then return 0; fi
    install_if_missing pg_ctlcluster postgresql
    install_if_missing pg_isready postgresql-client
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start \
        || true
    for _ in $(seq 1 60); do
        postgres_answers && return 0
        sleep 0.5
    done
    log "PostgreSQL did not start"
    return 1
}

ensure_rabbitmq() {
    if rabbitmq_answers; then return 0; fi
    install_if_missing rabbitmq-server rabbitmq-server
    log "starting RabbitMQ"
    rabbitmq-server -detached || true
    timeout 120 rabbitmqctl await_startup >/dev/null
    for _ in $(seq 1 60); do
        rabbitmq_answers && return 0
        sleep 0.5
    done
    log "RabbitMQ did not start"
    return 1
}

ensure_services() {
    ensure_postgres
    ensure_rabbitmq
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    ensure_services
    log "PostgreSQL and RabbitMQ are answering"
fi
