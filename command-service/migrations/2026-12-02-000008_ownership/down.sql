DROP TABLE owners;
DROP INDEX orders_customer_idx;
ALTER TABLE orders DROP CONSTRAINT orders_customer_fkey;
ALTER TABLE customers DROP CONSTRAINT customers_pkey;
ALTER TABLE customers ADD PRIMARY KEY (email);
ALTER TABLE orders
    ADD CONSTRAINT orders_customer_email_fkey
    FOREIGN KEY (customer_email) REFERENCES customers (email);
CREATE INDEX orders_customer_email_idx ON orders (customer_email);
ALTER TABLE customers DROP COLUMN owner_position, DROP COLUMN owner;
ALTER TABLE orders DROP COLUMN owner_position, DROP COLUMN owner;
