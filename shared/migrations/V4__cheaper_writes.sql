-- Cheaper writes on the hot paths: creating timers and recording fires.

-- A transaction that sends a notification takes a database-wide lock when it commits and
-- holds it until its commit record is on disk, so notifying transactions commit one at a
-- time and concurrent creates lose group commit. Announce only what a worker could otherwise
-- fire late: a timer due within this horizon. A worker asks the database what is due next at
-- least every 5 seconds (the claim loop's safety recheck) and then sleeps until the earliest
-- due instant, so a timer due later than the horizon is found in time without an
-- announcement, as long as its transaction commits within the horizon minus that recheck
-- after writing it. The horizon must stay longer than the worker's safety recheck.
create or replace function clockworks_notify_due() returns trigger
language plpgsql as $$
declare
    earliest timestamptz;
begin
    select min(next_fire_at) into earliest from changed where state = 'scheduled';
    if earliest < clock_timestamp() + interval '10 seconds' then
        perform pg_notify('clockworks_due', (extract(epoch from earliest) * 1000)::bigint::text);
    end if;
    return null;
end
$$;

-- No query reads fire history by namespace and timer id: the api finds a timer's fires by
-- its incarnation (the primary key). The index only cost every fire one more insertion.
drop index fires_timer_idx;

-- An operation's item results are written thousands at a time, and checking each one against
-- its operation cost as much as writing it. Retention deletes an operation's items with the
-- operation (see retention.rs); nothing else deletes operations.
alter table operation_items drop constraint operation_items_operation_id_fkey;

-- A request is written once by the api and read whole by the worker that applies it; no query
-- looks inside it. As json text it is only checked when written and sent as it is when read,
-- where jsonb was converted both ways.
alter table operations alter column request type json using request::json;
