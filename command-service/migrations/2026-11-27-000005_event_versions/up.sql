-- The outbox is also the write side's event log: no two events may claim the same version of
-- one order. The version is read from the envelope itself, so every writer of the outbox
-- (including an older release's, which knows nothing of this column) is held to it.
ALTER TABLE outbox
    ADD COLUMN aggregate_version BIGINT NOT NULL
        GENERATED ALWAYS AS ((envelope ->> 'aggregateVersion')::BIGINT) STORED,
    ADD CONSTRAINT outbox_aggregate_version_key UNIQUE (aggregate_id, aggregate_version);
