DELETE FROM idempotency_keys a USING idempotency_keys b
 WHERE a.key = b.key AND a.created_at > b.created_at;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys DROP COLUMN principal;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (key);
