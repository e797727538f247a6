CREATE SCHEMA app;
CREATE SEQUENCE app.invoice_no AS bigint START 1000;
CREATE TABLE app.users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text NOT NULL DEFAULT 'anon',
    email_lower text GENERATED ALWAYS AS (lower(email)) STORED,
    tags text[] DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    manager_id bigint REFERENCES app.users (id),
    CHECK (name <> '')
);
COMMENT ON TABLE app.users IS 'people who log in';
COMMENT ON COLUMN app.users.email IS 'login';
CREATE INDEX users_lower_name ON app.users (lower(name));
CREATE INDEX users_tags ON app.users USING gin (tags);
CREATE INDEX users_recent ON app.users (created_at) INCLUDE (name) WHERE created_at > '2020-01-01';
CREATE TABLE app.orders (
    id serial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES app.users (id),
    total numeric(10, 2) NOT NULL CHECK (total >= 0),
    invoice bigint DEFAULT nextval('app.invoice_no'),
    placed tstzrange,
    EXCLUDE USING gist (placed WITH &&)
);
CREATE INDEX orders_user ON app.orders (user_id);
COMMENT ON INDEX app.orders_user IS 'orders of a user';
CREATE TABLE app.order_lines (
    order_id int REFERENCES app.orders (id),
    line int,
    qty int NOT NULL DEFAULT 1,
    PRIMARY KEY (order_id, line)
);
CREATE TABLE app.line_notes (
    id int PRIMARY KEY,
    order_id int NOT NULL,
    line int NOT NULL,
    note text,
    FOREIGN KEY (order_id, line) REFERENCES app.order_lines (order_id, line)
);
CREATE TABLE app.events (
    id bigint,
    at date NOT NULL,
    kind text,
    PRIMARY KEY (id, at)
) PARTITION BY RANGE (at);
CREATE TABLE app.events_2023 PARTITION OF app.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE app.events_2024 PARTITION OF app.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE INDEX events_kind ON app.events (kind);
CREATE VIEW app.managed_users AS SELECT id, email FROM app.users WHERE manager_id IS NOT NULL;
CREATE MATERIALIZED VIEW app.order_totals AS SELECT user_id, sum(total) AS total FROM app.orders GROUP BY user_id;
CREATE UNIQUE INDEX order_totals_user ON app.order_totals (user_id);
COMMENT ON MATERIALIZED VIEW app.order_totals IS 'spend per user';

INSERT INTO app.users (email, name, manager_id, created_at) SELECT 'user' || i || '@example.org', 'Name' || i, NULL, '2024-01-01'::timestamptz + i * interval '1 hour' FROM generate_series(1, 50) i;
UPDATE app.users SET manager_id = 1 WHERE id > 1 AND id % 5 = 0;
INSERT INTO app.orders (user_id, total, placed) SELECT 1 + i % 50, i, tstzrange('2024-01-01'::timestamptz + i * interval '1 day', '2024-01-01'::timestamptz + (i + 1) * interval '1 day') FROM generate_series(1, 200) i;
INSERT INTO app.order_lines SELECT o, l, l FROM generate_series(1, 200) o, generate_series(1, 2) l;
INSERT INTO app.line_notes SELECT i, 1 + i % 200, 1, 'note' FROM generate_series(1, 100) i;
INSERT INTO app.events SELECT i, '2023-06-01'::date + i, 'k' || (i % 3) FROM generate_series(1, 400) i;
REFRESH MATERIALIZED VIEW app.order_totals;
