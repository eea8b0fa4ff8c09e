-- Every fire rewrites its timer's row, and until VACUUM removes the old versions the claim
-- query walks past their entries at the head of the due index. The workers vacuum `timers`
-- themselves once it holds CLOCKWORKS_VACUUM_DEAD_ROWS dead rows. Where they do not (that
-- setting is 0, or their role does not own the table), autovacuum should act on the same
-- fixed number of dead rows rather than on its default, a fifth of the table.
alter table timers set (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000
);
