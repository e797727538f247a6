-- The shop of the data-subject tests (SPEC §7). Subject: customer 1,
-- customer1@example.org. Every table holds >= 1000 rows so that one
-- subject stays under the default --max-matching-proportion (0.01).
CREATE TABLE public.customer (
    customer_id int PRIMARY KEY,
    email       varchar(60) NOT NULL UNIQUE,
    name        text NOT NULL,
    referred_by int REFERENCES public.customer ON DELETE SET NULL,  -- a self-reference: the referred are other people
    updated_at  timestamptz NOT NULL
);
INSERT INTO public.customer
SELECT i, 'customer' || i || '@example.org',
       (ARRAY['Alice','Bob','Carol','Dave','Erin','Frank','Grace','Heidi'])[1 + i % 8],
       CASE WHEN i % 10 = 2 THEN i - 1 END,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute'
FROM generate_series(1, 1000) AS i;

-- A composite key, referenced by a composite foreign key.
CREATE TABLE public.rental (
    store_id    int NOT NULL,
    rental_id   int NOT NULL,
    customer_id int NOT NULL REFERENCES public.customer,
    rented_at   timestamptz NOT NULL,
    PRIMARY KEY (store_id, rental_id)
);
INSERT INTO public.rental
SELECT 1 + r % 3, r, 1 + (r - 1) / 3, timestamptz '2025-01-01 00:00:00+00' + r * interval '1 hour'
FROM generate_series(1, 3000) AS r;

CREATE TABLE public.payment (
    payment_id bigint PRIMARY KEY,
    store_id   int NOT NULL,
    rental_id  int NOT NULL,
    amount     numeric(8,2) NOT NULL,
    FOREIGN KEY (store_id, rental_id) REFERENCES public.rental
);
INSERT INTO public.payment SELECT p, 1 + p % 3, p, (p % 50) + 0.99 FROM generate_series(1, 3000) AS p;

-- Two paths to the subject: by customer and by payment.
CREATE TABLE public.note (
    note_id     int PRIMARY KEY,
    customer_id int NOT NULL REFERENCES public.customer,
    payment_id  bigint REFERENCES public.payment,
    body        text NOT NULL
);
INSERT INTO public.note SELECT n, n, NULL, 'note ' || n FROM generate_series(1, 1000) AS n;
INSERT INTO public.note VALUES (1001, 500, 1, 'about payment 1');

-- A reference cycle: account → card → account.
CREATE TABLE public.account (
    account_id   int PRIMARY KEY,
    customer_id  int NOT NULL REFERENCES public.customer,
    primary_card int
);
CREATE TABLE public.card (
    card_id    int PRIMARY KEY,
    account_id int NOT NULL REFERENCES public.account DEFERRABLE INITIALLY DEFERRED
);
ALTER TABLE public.account ADD FOREIGN KEY (primary_card) REFERENCES public.card DEFERRABLE INITIALLY DEFERRED;
INSERT INTO public.account SELECT a, a, a FROM generate_series(1, 1000) AS a;
INSERT INTO public.card SELECT c, c FROM generate_series(1, 1000) AS c;
