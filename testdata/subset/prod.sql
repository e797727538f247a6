-- A schema for referential subsets: FK chains (customer → orders →
-- order_item), a composite key (product), a self-reference (staff.manager_id),
-- a cycle (customer.default_address_id ↔ address.customer_id), a nullable
-- reference, a relation the catalog lacks (customer.referrer_id, declared
-- with references: in the tests), and a user_id column with no foreign key
-- (events, page_views).
CREATE TABLE region (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE customer (
  id int PRIMARY KEY,
  email text NOT NULL,
  region_id int REFERENCES region,
  referrer_id int,
  default_address_id int,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE address (
  id int PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customer,
  city text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE customer ADD CONSTRAINT customer_default_address_fkey
  FOREIGN KEY (default_address_id) REFERENCES address DEFERRABLE INITIALLY DEFERRED;
CREATE TABLE staff (id int PRIMARY KEY, manager_id int REFERENCES staff, name text NOT NULL);
CREATE TABLE orders (
  id int PRIMARY KEY,
  customer_id int NOT NULL REFERENCES customer,
  staff_id int REFERENCES staff,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON orders (customer_id);
CREATE TABLE product (sku text, variant int, name text NOT NULL, PRIMARY KEY (sku, variant));
CREATE TABLE order_item (
  order_id int REFERENCES orders,
  line int,
  sku text NOT NULL,
  variant int NOT NULL,
  quantity int NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (order_id, line),
  FOREIGN KEY (sku, variant) REFERENCES product
);
CREATE TABLE events (id int PRIMARY KEY, user_id int, kind text NOT NULL);
CREATE TABLE page_views (id int PRIMARY KEY, customer_id int, url text NOT NULL);

BEGIN;
INSERT INTO region SELECT i, 'region ' || i FROM generate_series(1, 5) i;
INSERT INTO staff VALUES (1, NULL, 'boss');
INSERT INTO staff SELECT i, (i - 2) / 3 + 1, 'staff ' || i FROM generate_series(2, 30) i;
INSERT INTO customer (id, email, region_id, referrer_id)
  SELECT i, 'c' || i || '@example.org', CASE WHEN i % 7 = 0 THEN NULL ELSE i % 5 + 1 END,
         CASE WHEN i % 4 = 0 THEN (i * 37) % 200 + 1 END
  FROM generate_series(1, 200) i;
INSERT INTO address SELECT i, (i * 13) % 200 + 1, 'city ' || i FROM generate_series(1, 300) i;
UPDATE customer c SET default_address_id = (SELECT min(a.id) FROM address a WHERE a.customer_id = (c.id * 7) % 200 + 1);
INSERT INTO product SELECT 'sku-' || (i % 20), i / 20, 'product ' || i FROM generate_series(0, 59) i;
INSERT INTO orders SELECT i, (i * 17) % 200 + 1, CASE WHEN i % 3 = 0 THEN NULL ELSE i % 30 + 1 END FROM generate_series(1, 600) i;
INSERT INTO order_item SELECT o, l, 'sku-' || ((o * l) % 20), (o + l) % 3, l FROM generate_series(1, 600) o, generate_series(1, 3) l WHERE (o + l) % 4 <> 0;
INSERT INTO events SELECT i, (i * 11) % 200 + 1, 'view' FROM generate_series(1, 400) i;
INSERT INTO page_views SELECT i, (i * 3) % 200 + 1, '/p/' || i FROM generate_series(1, 300) i;
COMMIT;
ANALYZE;
