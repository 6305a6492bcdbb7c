-- An Idempotency-Key belongs to the principal that used it (the token's subject; '' while auth
-- is off): another client's same key is another key, and never learns of the first one's order.
-- Keys recorded before this migration were global; they are filed under '' and so no longer
-- answer a client with auth on, which places a new order on such a retry.
ALTER TABLE idempotency_keys ADD COLUMN principal TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ALTER COLUMN principal DROP DEFAULT;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (principal, key);
