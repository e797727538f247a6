-- The second input of the data-subject tests: a CRM with the same person.
CREATE TABLE public.contact (
    contact_id bigint PRIMARY KEY,
    email      text NOT NULL,
    phone      text
);
INSERT INTO public.contact SELECT i, 'customer' || i || '@example.org', '+1 555 ' || lpad(i::text, 7, '0') FROM generate_series(1, 1000) AS i;

CREATE TABLE public.ticket (
    ticket_id  bigint PRIMARY KEY,
    contact_id bigint NOT NULL REFERENCES public.contact,
    subject    text NOT NULL
);
INSERT INTO public.ticket SELECT t, 1 + (t - 1) / 2, 'ticket ' || t FROM generate_series(1, 2000) AS t;

-- A key with a rule: source_primary_key is the hash of the e-mail address.
CREATE TABLE public.subscriber (
    email text PRIMARY KEY,
    list  text NOT NULL
);
INSERT INTO public.subscriber SELECT 'customer' || i || '@example.org', (ARRAY['news','offers'])[1 + i % 2] FROM generate_series(1, 1000) AS i;
