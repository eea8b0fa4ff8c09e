-- Batch operations, applied by the workers. Each operation is applied in one transaction
-- that holds its row lock; `attempts` counts how many times a worker started it, so that an
-- operation that keeps killing the workers that apply it is failed instead of retried
-- forever. `counts` holds the number of items per outcome once the operation has finished.
alter table operations
    add column attempts integer not null default 0,
    add column counts jsonb;

-- Operations of one namespace are applied one at a time, in the order they were accepted:
-- the claim looks for the earliest unfinished operation of each namespace.
create index operations_unfinished_idx on operations (namespace, submitted_at, id)
    where status in ('pending', 'running');

-- A namespace's operations are listed newest first by id (UUIDv7, which sorts by time).
create index operations_namespace_id_idx on operations (namespace, id desc);

-- Retention deletes finished operations (and their items) some days after they finished.
create index operations_finished_idx on operations (finished_at)
    where status in ('succeeded', 'failed');

-- Wake the workers when an operation is accepted. One notification per statement; a worker
-- that missed it finds the operation on its periodic re-check.
create function clockworks_notify_operation() returns trigger
language plpgsql as $$
begin
    perform pg_notify('clockworks_operations', '');
    return null;
end
$$;

create trigger operations_notify_on_insert
    after insert on operations
    for each statement execute function clockworks_notify_operation();
