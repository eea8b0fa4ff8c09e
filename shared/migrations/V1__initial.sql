-- The clockworks schema. PostgreSQL is the source of truth: timers, their fire history,
-- the API keys that guard them and the batch operations that change many at once.

-- API keys. A key is shown once at creation as `cw_<id>_<secret>`; only a SHA-256 hash of
-- the secret is stored. The id is public and finds the row; the hash is compared in constant
-- time by the api.
create table api_keys (
    id text primary key,
    namespace text not null,
    name text not null default '',
    secret_hash bytea not null,
    scopes text[] not null,
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);

create index api_keys_namespace_idx on api_keys (namespace);

-- Timers. `id` is the client's (or a generated UUIDv7) and is unique within a namespace;
-- `uid` names one incarnation of that id, so a timer deleted and created again under the same
-- id never repeats an AMQP message_id. `next_fire_at` is the instant of the next fire while
-- the timer is scheduled; "due" means next_fire_at <= now() by the database clock.
create table timers (
    namespace text not null,
    id text not null,
    uid uuid not null unique,
    group_name text,
    schedule jsonb not null,
    routing_key text not null,
    payload jsonb not null,
    headers jsonb not null default '{}',
    state text not null default 'scheduled'
        check (state in ('scheduled', 'paused', 'completed', 'failed')),
    next_fire_at timestamptz,
    fire_count bigint not null default 0,
    last_fired_at timestamptz,
    failure_reason text,
    version bigint not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (namespace, id)
);

-- The claim query walks this index in due order and skips rows other workers hold.
create index timers_due_idx on timers (next_fire_at) where state = 'scheduled';
create index timers_group_idx on timers (namespace, group_name, id) where group_name is not null;
create index timers_finished_idx on timers (updated_at) where state = 'completed';

-- Wake the workers when a change makes a timer due earlier than they planned: the payload is
-- the earliest next_fire_at (milliseconds since the Unix epoch) among the rows a statement
-- wrote. One notification per statement, however many rows it touched.
create function clockworks_notify_due() returns trigger
language plpgsql as $$
declare
    earliest timestamptz;
begin
    select min(next_fire_at) into earliest from changed where state = 'scheduled';
    if earliest is not null then
        perform pg_notify('clockworks_due', (extract(epoch from earliest) * 1000)::bigint::text);
    end if;
    return null;
end
$$;

create trigger timers_notify_due_on_insert
    after insert on timers
    referencing new table as changed
    for each statement execute function clockworks_notify_due();

create trigger timers_notify_due_on_update
    after update on timers
    referencing new table as changed
    for each statement execute function clockworks_notify_due();

-- Fire history: one row per publication of a timer, written in the transaction that marks
-- the timer fired. `timer_uid` ties it to one incarnation of the timer id.
create table fires (
    timer_uid uuid not null,
    fire_seq bigint not null,
    namespace text not null,
    timer_id text not null,
    scheduled_at timestamptz not null,
    fired_at timestamptz not null,
    outcome text not null default 'delivered',
    primary key (timer_uid, fire_seq)
);

create index fires_timer_idx on fires (namespace, timer_id, fired_at desc);
create index fires_fired_at_idx on fires (fired_at);

-- Batch operations: stored before the api answers 202, applied by a worker, polled by the
-- client. `request` holds the validated items; `results` one row per item once applied.
create table operations (
    id uuid primary key,
    namespace text not null,
    kind text not null,
    status text not null default 'pending'
        check (status in ('pending', 'running', 'succeeded', 'failed')),
    idempotency_key text,
    request_hash bytea,
    request jsonb not null,
    item_count integer not null,
    error text,
    submitted_at timestamptz not null default now(),
    started_at timestamptz,
    finished_at timestamptz,
    unique (namespace, idempotency_key)
);

create index operations_pending_idx on operations (submitted_at) where status in ('pending', 'running');
create index operations_namespace_idx on operations (namespace, submitted_at desc);

create table operation_items (
    operation_id uuid not null references operations (id) on delete cascade,
    item_index integer not null,
    timer_id text,
    outcome text not null,
    error text,
    primary key (operation_id, item_index)
);
