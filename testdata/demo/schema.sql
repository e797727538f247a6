-- A small shop with the kinds of PII nopii is for. Deterministic: every value
-- is computed from generate_series, so tests can assert exact counts.
CREATE TYPE public.customer_status AS ENUM ('prospect', 'active', 'churned');
CREATE DOMAIN public.email_address AS text CHECK (VALUE LIKE '%@%');

CREATE TABLE public.customer (
    customer_id   bigint PRIMARY KEY,
    email         public.email_address NOT NULL UNIQUE,
    first_name    varchar(40) NOT NULL,
    last_name     varchar(40) NOT NULL,
    phone         text,
    ssn           char(11),
    date_of_birth date,
    status        public.customer_status NOT NULL DEFAULT 'active',
    tags          text[],
    address       jsonb,
    lifetime_value numeric(12,2),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

INSERT INTO public.customer
SELECT i,
       'customer' || i || '@mail.example.org',
       (ARRAY['Alice','Bob','Carol','Dave','Erin','Frank','Grace','Heidi'])[1 + i % 8],
       (ARRAY['Smith','Jones','Brown','Taylor','Wilson','Davies'])[1 + i % 6],
       CASE WHEN i % 10 = 0 THEN NULL ELSE '+1 555 ' || lpad((i * 7919 % 10000000)::text, 7, '0') END,
       lpad((100 + i % 800)::text, 3, '0') || '-' || lpad((10 + i % 89)::text, 2, '0') || '-' || lpad((i % 10000)::text, 4, '0'),
       date '1950-01-01' + (i * 37 % 20000),
       (ARRAY['prospect','active','churned']::public.customer_status[])[1 + i % 3],
       CASE WHEN i % 4 = 0 THEN ARRAY['vip', 'newsletter'] WHEN i % 4 = 1 THEN ARRAY[]::text[] ELSE NULL END,
       jsonb_build_object('street', i || ' Main Street', 'city', (ARRAY['Springfield','Shelbyville','Ogdenville'])[1 + i % 3],
                          'zip', lpad((i % 99999)::text, 5, '0'), 'contact', jsonb_build_object('email', 'alt' || i || '@mail.example.org')),
       round((i % 5000) * 1.37, 2),
       timestamptz '2024-01-01 00:00:00+00' + i * interval '17 minutes',
       timestamptz '2024-06-01 00:00:00+00' + i * interval '13 minutes'
FROM generate_series(1, 2000) AS i;

CREATE TABLE public.orders (
    order_id    bigint PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES public.customer,
    email       text NOT NULL,          -- denormalised: joins with customer.email after redaction
    total       numeric(10,2) NOT NULL,
    placed_at   timestamptz NOT NULL
);
INSERT INTO public.orders
SELECT o, 1 + o % 2000, 'customer' || (1 + o % 2000) || '@mail.example.org', (o % 700) + 0.99,
       timestamptz '2025-01-01 00:00:00+00' + o * interval '5 minutes'
FROM generate_series(1, 6000) AS o;

CREATE TABLE public.payment (
    order_id    bigint NOT NULL,
    line        int NOT NULL,
    card_number text NOT NULL,
    iban        varchar(34),
    amount      numeric(10,2) NOT NULL,
    PRIMARY KEY (order_id, line)
);
INSERT INTO public.payment
SELECT 1 + p / 2, p % 2, '4111 1111 1111 ' || lpad((p % 10000)::text, 4, '0'), 'DE89370400440532013' || lpad((p % 1000)::text, 3, '0'), p % 300 + 0.5
FROM generate_series(0, 3999) AS p;

CREATE TABLE public.staff (
    staff_id  int PRIMARY KEY,
    username  text NOT NULL UNIQUE,
    password  bytea NOT NULL,
    picture   bytea,
    hired_on  date NOT NULL
);
INSERT INTO public.staff
SELECT s, 'staff' || s, sha256(('secret' || s)::bytea), CASE WHEN s % 2 = 0 THEN decode('89504e470d0a1a0a', 'hex') END, date '2020-01-01' + s
FROM generate_series(1, 25) AS s;

-- Partitioned: read through its root, loaded as one table.
CREATE TABLE public.event (
    event_id   bigint NOT NULL,
    at         timestamptz NOT NULL,
    ip         inet,
    user_agent text,
    PRIMARY KEY (event_id, at)
) PARTITION BY RANGE (at);
CREATE TABLE public.event_2024 PARTITION OF public.event FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE public.event_2025 PARTITION OF public.event FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO public.event
SELECT e, timestamptz '2024-06-01 00:00:00+00' + e * interval '1 hour', ('10.0.' || (e % 256) || '.' || (e * 7 % 256))::inet, 'Mozilla/5.0 (demo ' || e % 5 || ')'
FROM generate_series(1, 12000) AS e;

-- No primary key: the config names one.
CREATE TABLE public.newsletter_signup (
    email      text NOT NULL,
    signed_up  timestamptz NOT NULL
);
INSERT INTO public.newsletter_signup
SELECT 'customer' || i || '@mail.example.org', timestamptz '2024-03-01 00:00:00+00' + i * interval '1 day'
FROM generate_series(1, 300) AS i;

-- Big and boring, and excluded by the workflow.
CREATE TABLE public.film_text (film_id int PRIMARY KEY, description text);
INSERT INTO public.film_text SELECT f, repeat('lorem ipsum ', 20) FROM generate_series(1, 100) AS f;

-- A view: skipped by the public.* pattern.
CREATE VIEW public.active_customer AS SELECT customer_id, email FROM public.customer WHERE status = 'active';

ANALYZE;
