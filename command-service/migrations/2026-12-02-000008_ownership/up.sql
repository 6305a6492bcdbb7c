-- Every order belongs to the principal that placed it (its token's subject; '' for the
-- anonymous principal of a service without auth), and a customer to an owner: the same email
-- under two owners is two customers, each with its own names and summary. Orders placed
-- before are the anonymous owner's, as their events are upcast (OnNewOrder v4 and
-- OrderCancelled v3 become the anonymous owner's in shared-events).
--
-- Each order and customer also has a position in its owner's listings, carried in its events
-- (OnNewOrder v5, OrderCancelled v4). A subject's positions are counted in its row of
-- `owners`; the anonymous owner's are the list positions themselves (with auth off every
-- order is its, and one counter row would make every group commit wait for the one before).
SET LOCAL statement_timeout = 0;

ALTER TABLE orders
    ADD COLUMN owner          TEXT NOT NULL DEFAULT '',
    ADD COLUMN owner_position BIGINT;
UPDATE orders SET owner_position = list_position;
ALTER TABLE orders
    ALTER COLUMN owner DROP DEFAULT,
    ALTER COLUMN owner_position SET NOT NULL;

ALTER TABLE customers
    ADD COLUMN owner          TEXT NOT NULL DEFAULT '',
    ADD COLUMN owner_position BIGINT;
UPDATE customers SET owner_position = list_position;
ALTER TABLE customers
    ALTER COLUMN owner DROP DEFAULT,
    ALTER COLUMN owner_position SET NOT NULL;

ALTER TABLE orders DROP CONSTRAINT orders_customer_email_fkey;
ALTER TABLE customers DROP CONSTRAINT customers_pkey;
ALTER TABLE customers ADD PRIMARY KEY (owner, email);
DROP INDEX orders_customer_email_idx;
ALTER TABLE orders
    ADD CONSTRAINT orders_customer_fkey
    FOREIGN KEY (owner, customer_email) REFERENCES customers (owner, email);
CREATE INDEX orders_customer_idx ON orders (owner, customer_email);

CREATE TABLE owners (
    owner          TEXT PRIMARY KEY CHECK (owner <> ''),
    -- The last positions given in the owner's listings of orders and of customers.
    order_count    BIGINT NOT NULL CHECK (order_count >= 0),
    customer_count BIGINT NOT NULL CHECK (customer_count >= 0)
);
