-- The life of a timer after its creation: fires that come too late to be of use, and fires
-- requested out of schedule with /trigger.

-- A fire later than its scheduled instant plus this many milliseconds is recorded as
-- expired and not published. Null: a fire is never too late.
alter table timers
    add column expire_after_ms bigint check (expire_after_ms > 0);

-- A trigger makes a timer due at once without moving its schedule. While a trigger is
-- pending, the row is scheduled at the trigger instant, so the claim query walks the same
-- index as ever, and these columns keep the timer's own state and the slot it was waiting
-- for. The worker puts them back in place when it records the triggered fire.
alter table timers
    add column deferred_state text
        check (deferred_state in ('scheduled', 'paused', 'completed')),
    add column deferred_next_fire_at timestamptz,
    add constraint timers_deferred_only_while_triggered
        check (deferred_state is null or (state = 'scheduled' and next_fire_at is not null)),
    add constraint timers_deferred_slot_has_a_state
        check (deferred_next_fire_at is null or deferred_state is not null);
