ALTER TABLE outbox DROP COLUMN aggregate_version;
