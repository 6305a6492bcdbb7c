DROP TABLE outbox;
DROP TABLE orders;
DROP TABLE customers;
