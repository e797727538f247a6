-- The scanner's labelled corpus: tables with PII columns of every kind, in
-- several naming styles and languages, next to columns that look like PII
-- and are not (hashes, uuids, SKUs, amounts, status codes, free text, ids
-- that pass Luhn by chance, recent dates). labels.txt says which columns
-- hold PII and of what kind; every other column holds none.

CREATE FUNCTION pick(a text[], i int) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT a[1 + (i % array_length(a, 1))] $$;

-- luhn completes a digit string with its Luhn check digit.
CREATE FUNCTION luhn(d text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE s int := 0; n int; dbl bool := true;
BEGIN
  FOR k IN REVERSE length(d)..1 LOOP
    n := substr(d, k, 1)::int;
    IF dbl THEN n := n * 2; IF n > 9 THEN n := n - 9; END IF; END IF;
    s := s + n; dbl := NOT dbl;
  END LOOP;
  RETURN d || ((10 - s % 10) % 10)::text;
END $$;

-- de_iban builds a German IBAN with its mod-97 check digits.
CREATE FUNCTION de_iban(i int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT 'DE' || lpad((98 - ((bban || '131400')::numeric % 97))::text, 2, '0') || bban
  FROM (SELECT lpad((37040044 + i % 1000)::text, 8, '0') || lpad((532013000 + i * 7919)::text, 10, '0') AS bban) b
$$;

CREATE SCHEMA gen; -- helpers, outside the scanned schema
CREATE TABLE gen.first_names (n text);
INSERT INTO gen.first_names SELECT unnest(ARRAY['Anna','Thomas','Maria','Lukas','Sophie','Jean','Giulia','Pieter','Emma','Carlos',
  'Laura','Marco','Julia','David','Sara','Pedro','Inês','Noah','Léa','Hannah','Michael','Jennifer','Chiara','Daan','Lucía',
  'Felix','Camille','Matteo','Sanne','João','Olivia','James','Elena','Pablo','Fleur','Nicolas','Isabel','Leon','Marta','Tiago']);
CREATE TABLE gen.last_names (n text);
INSERT INTO gen.last_names SELECT unnest(ARRAY['Müller','Schmidt','García','Rossi','de Vries','Dubois','Silva','Smith','Johnson',
  'Fernández','Bianchi','Jansen','Martin','Santos','Weber','Moreau','López','Esposito','Bakker','Pereira','Williams','Brown',
  'Fischer','Bernard','Romano','Visser','Costa','Wagner','Petit','Ricci','Meijer','Oliveira','Becker','Durand','Martínez']);
CREATE FUNCTION fn(i int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT pick(ARRAY(SELECT n FROM gen.first_names), i) $$;
CREATE FUNCTION ln(i int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT pick(ARRAY(SELECT n FROM gen.last_names), i * 7 + i / 40) $$;

-- English, snake_case
CREATE TABLE customer (
  customer_id bigint PRIMARY KEY,
  first_name text, last_name text, email text, phone text, date_of_birth date, ssn text,
  street_address text, city text, zip_code text, card_number text, card_brand text, card_expiry text,
  status text, lifetime_value numeric(12,2), created_at timestamptz, email_verified boolean, notes text,
  country char(2), referral_code text
);
INSERT INTO customer SELECT i, fn(i), ln(i),
  lower(translate(fn(i), 'éèíóúáñüöäç', 'eeiouanuoac')) || '.' || i || '@' || pick(ARRAY['gmail.com','web.de','orange.fr','libero.it','ziggo.nl'], i),
  '+1 ' || (201 + i % 700) || ' ' || lpad((i * 7919 % 1000)::text, 3, '0') || ' ' || lpad((i * 104729 % 10000)::text, 4, '0'),
  date '1935-01-01' + (i * 997 % 25000),
  lpad((1 + i * 37 % 660)::text, 3, '0') || '-' || lpad((1 + i % 98)::text, 2, '0') || '-' || lpad((1 + i * 13 % 9998)::text, 4, '0'),
  (1 + i % 250) || ' ' || pick(ARRAY['Main','Oak','Maple','Cedar','Elm','Washington','Lake','Hill'], i) || ' ' || pick(ARRAY['Street','Avenue','Road','Lane','Drive','Blvd'], i / 3),
  pick(ARRAY['Springfield','Portland','Austin','Denver','Boston','Seattle','Chicago','Phoenix'], i),
  lpad((10000 + i * 37 % 89999)::text, 5, '0'),
  luhn('4' || lpad((i * 7919)::text, 14, '0')),
  pick(ARRAY['Visa','Mastercard','Amex'], i), lpad((1 + i % 12)::text, 2, '0') || '/' || (26 + i % 5),
  pick(ARRAY['active','pending','closed','suspended'], i), (i * 37 % 10000) / 3.0, now() - (i || ' hours')::interval, i % 3 = 0,
  pick(ARRAY['Prefers delivery in the morning','Asked about the warranty','VIP since the spring sale','Returned one item','No remarks'], i),
  pick(ARRAY['US','DE','FR','ES','IT','NL','PT'], i), 'REF' || upper(substr(md5(i::text), 1, 8))
FROM generate_series(1, 400) i;

-- English, camelCase, as an ORM writes it
CREATE TABLE "appUser" (
  "id" uuid PRIMARY KEY, "userName" text, "emailAddress" text, "phoneNumber" text, "dateOfBirth" date,
  "lastLoginIp" inet, "passwordHash" text, "createdAt" timestamptz, "isAdmin" boolean, "avatarUrl" text,
  "apiToken" text, "loginCount" int, "preferredLanguage" text, "timeZone" text
);
INSERT INTO "appUser" SELECT md5(i::text)::uuid, lower(fn(i)) || '_' || i, lower(ln(i + 3)) || i || '@example.org',
  '(' || (201 + i % 700) || ') ' || lpad((i * 31 % 1000)::text, 3, '0') || '-' || lpad((i * 97 % 10000)::text, 4, '0'),
  date '1950-06-01' + (i * 389 % 20000), ('10.' || i % 256 || '.' || i * 7 % 256 || '.' || i * 13 % 256)::inet,
  '$2b$12$' || substr(md5(i::text) || md5((i + 1)::text), 1, 53), now() - (i || ' minutes')::interval, i % 50 = 0,
  'https://cdn.example.com/avatars/' || md5(i::text) || '.png', encode(sha256(i::text::bytea), 'hex'), i % 40,
  pick(ARRAY['en','de','fr','es','it','nl','pt'], i), pick(ARRAY['Europe/Berlin','America/New_York','UTC'], i)
FROM generate_series(1, 300) i;

-- German
CREATE TABLE kunden (
  kunden_nr int PRIMARY KEY, vorname text, nachname text, geburtsdatum date, strasse text, plz text, ort text,
  telefon text, e_mail text, iban text, steuer_id text, kundengruppe text, umsatz numeric(12,2), angelegt_am date
);
INSERT INTO kunden SELECT i, fn(i + 5), ln(i + 5), date '1945-03-01' + (i * 613 % 22000),
  pick(ARRAY['Hauptstraße','Bahnhofstraße','Lindenweg','Schulstraße','Gartenstraße','Birkenallee'], i) || ' ' || (1 + i % 120),
  lpad((1067 + i * 211 % 98000)::text, 5, '0'), pick(ARRAY['Berlin','München','Köln','Hamburg','Leipzig','Dresden'], i),
  '0' || pick(ARRAY['30','40','89','221','341'], i) || ' ' || (1000000 + i * 7919 % 8999999),
  lower(translate(ln(i + 5), 'üöäé ', 'uoae')) || '.' || i || '@web.de', de_iban(i), (10000000000 + i * 7919)::text,
  pick(ARRAY['A','B','C'], i), (i * 113 % 50000) / 7.0, date '2024-01-01' + i % 300
FROM generate_series(1, 300) i;

-- French
CREATE TABLE clients (
  id serial PRIMARY KEY, prenom text, nom text, date_naissance date, adresse text, code_postal text, ville text,
  telephone text, courriel text, numero_securite_sociale text, statut text, montant numeric(10,2)
);
INSERT INTO clients (prenom, nom, date_naissance, adresse, code_postal, ville, telephone, courriel, numero_securite_sociale, statut, montant)
SELECT fn(i + 11), ln(i + 11), date '1950-01-01' + (i * 421 % 20000),
  (1 + i % 90) || ' ' || pick(ARRAY['rue de la Paix','avenue Victor Hugo','boulevard Voltaire','rue du Moulin','chemin des Vignes'], i),
  lpad((75001 + i * 97 % 20000)::text, 5, '0'), pick(ARRAY['Paris','Lyon','Marseille','Toulouse','Nantes'], i),
  '0' || (1 + i % 7) || ' ' || lpad((i * 13 % 100)::text, 2, '0') || ' ' || lpad((i * 17 % 100)::text, 2, '0') || ' ' || lpad((i * 19 % 100)::text, 2, '0') || ' ' || lpad((i * 23 % 100)::text, 2, '0'),
  'client' || i || '@orange.fr',
  (SELECT b || lpad((97 - b::numeric % 97)::text, 2, '0') FROM (SELECT (1 + i % 2)::text || lpad((50 + i % 50)::text, 2, '0') || lpad((1 + i % 12)::text, 2, '0') || lpad((75000 + i)::text, 5, '0') || lpad((i * 7 % 1000)::text, 3, '0') AS b) x),
  pick(ARRAY['actif','inactif','prospect'], i), (i * 71 % 90000) / 9.0
FROM generate_series(1, 300) i;

-- Spanish
CREATE TABLE clientes (
  id int PRIMARY KEY, nombre text, apellidos text, fecha_nacimiento date, direccion text, correo text, telefono text,
  dni text, codigo_pedido text, importe numeric(10,2), estado text
);
INSERT INTO clientes SELECT i, fn(i + 17), ln(i + 17) || ' ' || ln(i + 23), date '1955-01-01' + (i * 509 % 19000),
  'Calle ' || pick(ARRAY['Mayor','Alcalá','Gran Vía','Serrano','Toledo'], i) || ' ' || (1 + i % 150),
  'cliente' || i || '@gmail.com', '+34 6' || lpad((i * 7919 % 100000000)::text, 8, '0'),
  lpad((10000000 + i * 7919)::text, 8, '0') || substr('TRWAGMYFPDXBNJZSQVHLCKE', (10000000 + i * 7919) % 23 + 1, 1),
  'PED-' || lpad(i::text, 6, '0'), (i * 53 % 20000) / 3.0, pick(ARRAY['pendiente','enviado','entregado'], i)
FROM generate_series(1, 300) i;

-- Italian
CREATE TABLE clienti (
  id int PRIMARY KEY, nome text, cognome text, codice_fiscale text, indirizzo text, cellulare text, cap_sociale numeric, categoria text
);
INSERT INTO clienti SELECT i, fn(i + 29), ln(i + 29),
  pick(ARRAY['RSS','BNC','VRD','FRR','ESP'], i) || pick(ARRAY['MRA','GLI','LCU','FNC'], i) ||
    lpad((50 + i % 50)::text, 2, '0') || pick(ARRAY['A','B','C','D','E','H','L','M','P','R','S','T'], i) || lpad((1 + i % 28)::text, 2, '0') ||
    pick(ARRAY['H','F','L'], i) || lpad((100 + i % 900)::text, 3, '0') || pick(ARRAY['X','Y','Z','K'], i),
  'Via ' || pick(ARRAY['Roma','Garibaldi','Dante','Verdi','Mazzini'], i) || ' ' || (1 + i % 200),
  '+39 3' || lpad((i * 7919 % 1000000000)::text, 9, '0'), i * 1000, pick(ARRAY['oro','argento','bronzo'], i)
FROM generate_series(1, 300) i;

-- Dutch
CREATE TABLE klanten (
  klant_id int PRIMARY KEY, voornaam text, achternaam text, geboortedatum date, straat text, postcode text, woonplaats text,
  telefoonnummer text, bsn text, klantsoort text
);
INSERT INTO klanten SELECT i, fn(i + 31), ln(i + 31), date '1948-01-01' + (i * 677 % 21000),
  pick(ARRAY['Kerkstraat','Dorpsstraat','Stationsweg','Molenlaan','Prinsengracht'], i) || ' ' || (1 + i % 80),
  (1000 + i * 37 % 8999) || ' ' || pick(ARRAY['AB','CD','EF','GH','KL'], i), pick(ARRAY['Amsterdam','Utrecht','Rotterdam','Den Haag'], i),
  '06 ' || lpad((i * 7919 % 100000000)::text, 8, '0'), lpad((100000000 + i * 11)::text, 9, '0'), pick(ARRAY['particulier','zakelijk'], i)
FROM generate_series(1, 300) i;

-- Portuguese
CREATE TABLE clientes_pt (
  id int PRIMARY KEY, nome text, sobrenome text, data_de_nascimento date, morada text, telemovel text, nif text, segmento text
);
INSERT INTO clientes_pt SELECT i, fn(i + 37), ln(i + 37), date '1952-01-01' + (i * 733 % 20000),
  'Rua ' || pick(ARRAY['Augusta','do Ouro','da Prata','Garrett'], i) || ' ' || (1 + i % 99),
  '+351 9' || lpad((i * 7919 % 100000000)::text, 8, '0'), (200000000 + i * 13)::text, pick(ARRAY['retalho','empresa'], i)
FROM generate_series(1, 300) i;

-- Columns named by nobody's word list, found by their values or comments
CREATE TABLE legacy_contacts (
  id int PRIMARY KEY, c1 text, c2 text, c3 text, c4 text, c5 text, c6 text, c7 date, c8 text, c9 text
);
COMMENT ON COLUMN legacy_contacts.c6 IS 'Geburtsort des Ansprechpartners';
COMMENT ON COLUMN legacy_contacts.c9 IS 'internal batch code';
INSERT INTO legacy_contacts SELECT i, fn(i) || ' ' || ln(i), 'p' || i || '@mail.example.net', '+44 20 7946 ' || lpad((i % 10000)::text, 4, '0'),
  pick(ARRAY['DE89370400440532013000','GB82WEST12345698765432','NL91ABNA0417164300','FR1420041010050500013M02606','ES9121000418450200051332'], i),
  '192.168.' || i % 256 || '.' || (i * 7) % 256, pick(ARRAY['Berlin','Wien','Zürich','Graz','Bern'], i), date '1940-01-01' + (i * 881 % 24000),
  luhn('5' || (1 + i % 5) || lpad((i * 104729)::text, 13, '0')), 'B' || lpad((i % 97)::text, 3, '0')
FROM generate_series(1, 300) i;

-- Documents with PII at some paths, and documents without
CREATE TABLE events (
  id bigint PRIMARY KEY, payload jsonb, meta json, kind text, occurred_at timestamptz
);
INSERT INTO events SELECT i,
  jsonb_build_object('contact', jsonb_build_object('email', 'e' || i || '@example.com', 'phone', '+49 151 ' || lpad((i * 7919 % 10000000)::text, 7, '0')),
                     'order', jsonb_build_object('sku', 'SKU-' || lpad(i::text, 5, '0'), 'qty', i % 5, 'total', (i * 37 % 1000) / 4.0)),
  json_build_object('source', pick(ARRAY['web','app','pos'], i), 'version', '2.' || i % 10, 'flags', json_build_array('a', 'b')),
  pick(ARRAY['order.created','order.paid','order.shipped'], i), now() - (i || ' seconds')::interval
FROM generate_series(1, 300) i;

-- Prose: support tickets with contact details in them, and without
CREATE TABLE ticket (
  id int PRIMARY KEY, subject text, body text, resolution text, founded_on date
);
INSERT INTO ticket SELECT i, pick(ARRAY['Login problem','Refund','Invoice question','Delivery late'], i),
  CASE WHEN i % 3 = 0 THEN 'Please call me back on +49 151 ' || lpad((i * 7919 % 10000000)::text, 7, '0') || ' tomorrow.'
       WHEN i % 3 = 1 THEN 'My new address for invoices is t' || i || '@example.com, thanks.'
       ELSE 'The parcel arrived damaged, box ' || i || ' of 3.' END,
  pick(ARRAY['Refund issued.','Password reset link sent.','Escalated to the carrier.','Closed without reply.'], i),
  date '1900-01-01' + (i * 4001 % 43000)
FROM generate_series(1, 300) i;

-- Looks like PII, is not
CREATE TABLE product (
  product_id bigint PRIMARY KEY, sku text, name text, description text, price numeric(10,2), weight_kg real,
  ean text, checksum text, content_md5 text, external_uuid text, tracking_number bigint, batch_id bigint,
  http_status int, version text, color text, warehouse_code text, released_on date, updated_at timestamptz,
  order_number text, barcode_value text
);
INSERT INTO product SELECT i, 'SKU-' || lpad(i::text, 6, '0') || '-' || pick(ARRAY['RD','BL','GR'], i),
  pick(ARRAY['Widget Pro','Blue Steel Hammer','Cable 2m','Laptop Stand','USB Hub','Desk Lamp','Office Chair','Monitor Arm'], i) || ' ' || (i % 9),
  pick(ARRAY['Sturdy and light.','Made of recycled aluminium.','Fits every desk.','Ships in two days.'], i),
  (i * 37 % 10000) / 4.0, (i % 90) / 3.0, '400' || lpad((i * 7919 % 1000000000)::text, 10, '0'),
  encode(sha256(i::text::bytea), 'hex'), md5(i::text), md5(i::text)::uuid::text,
  luhn('9' || lpad((i * 7919)::text, 14, '0'))::bigint, 1000000000000000 + i,
  (ARRAY[200, 201, 404, 500])[1 + i % 4], (i % 3) || '.' || (i % 7) || '.' || i, pick(ARRAY['red','blue','green'], i),
  'WH-' || (i % 20), date '2023-01-01' + i % 700, now() - (i || ' hours')::interval,
  lpad((i * 37)::text, 9, '0'), lpad((i * 104729)::text, 12, '0')
FROM generate_series(1, 300) i;

-- Brands named after people, and the town of a warehouse: not personal data
CREATE TABLE brand_stock (
  id int PRIMARY KEY, brand text, warehouse_city text, units int
);
INSERT INTO brand_stock SELECT i, pick(ARRAY['Hugo Boss','Tommy Hilfiger','Calvin Klein','Ralph Lauren','Marc Jacobs','Karl Lagerfeld',
  'Paul Smith','Ted Baker','Vera Wang','Michael Kors','Kate Spade','Tory Burch','Stella McCartney','Giorgio Armani','Donna Karan',
  'Hugo Boss Orange','Anna Sui','Emilio Pucci','Roberto Cavalli','Jean Paul Gaultier','Christian Dior'], i),
  pick(ARRAY['Duisburg','Venlo','Rotterdam','Lyon','Zaragoza'], i), i % 500
FROM generate_series(1, 300) i;

CREATE TABLE ledger (
  entry_id bigint PRIMARY KEY, account_code text, amount numeric(14,2), currency char(3), booked_on date,
  value_date date, memo text, reference text, cost_center int, fiscal_year int, hired_on date
);
INSERT INTO ledger SELECT i, pick(ARRAY['4000','4100','6000','6100','8000'], i), (i * 7919 % 1000000) / 100.0,
  pick(ARRAY['EUR','USD','GBP'], i), date '2024-01-01' + i % 365, date '2024-01-03' + i % 365,
  pick(ARRAY['Monthly rent','Office supplies','Travel expenses','Software licence'], i),
  'INV-' || (2024000 + i), 100 + i % 12, 2020 + i % 5, date '2008-01-01' + (i * 37 % 6000)
FROM generate_series(1, 300) i;

-- Free text with personal data in some rows (orders.notes: a phone number in
-- one row of ten), next to free text whose numbers are order numbers,
-- tracking codes, timestamps, amounts and versions, in every language.
CREATE TABLE orders (
  order_id bigint PRIMARY KEY, notes text, shipping_note text, amount_note text, placed_at timestamptz
);
INSERT INTO orders SELECT i,
  CASE WHEN i % 10 = 0 THEN 'Please call me at ' || (201 + i % 700) || '-' || lpad((i * 31 % 1000)::text, 3, '0') || '-' || lpad((i * 97 % 10000)::text, 4, '0') || ' before delivery'
       ELSE pick(ARRAY['Leave the parcel at the door','Gift wrap please','Second floor, ring twice','Deliver after 5pm','No invoice in the box'], i) END,
  'Order #' || (100000 + i) || ' shipped via UPS 1Z999AA1' || lpad((i * 7919 % 100000000)::text, 8, '0') || ' at 2024-03-' || lpad((1 + i % 28)::text, 2, '0') || ' 10:' || lpad((i % 60)::text, 2, '0') || '. Call us if it is late.',
  'Refund of ' || (i * 37 % 5000) || '.' || lpad((i % 100)::text, 2, '0') || ' USD issued, ref ' || (5000000000 + i * 7) || ', ticket ' || (2024000 + i),
  now() - (i || ' hours')::interval
FROM generate_series(1, 300) i;

CREATE TABLE bestellungen (
  id int PRIMARY KEY, bemerkung text, versandinfo text
);
INSERT INTO bestellungen SELECT i,
  CASE WHEN i % 7 = 0 THEN 'Bitte vorher anrufen: 0' || pick(ARRAY['151','171','30','89'], i) || ' ' || (2000000 + i * 7919 % 7999999)
       WHEN i % 7 = 3 THEN 'Rückfragen gern per Mail an ' || lower(translate(ln(i), 'üöäé ', 'uoae')) || i || '@web.de'
       ELSE pick(ARRAY['Beim Nachbarn abgeben','Bitte nicht klingeln','Lieferung ab 14 Uhr','Geschenkverpackung'], i) END,
  'Paket ' || (1000000000 + i * 7919) || ' am ' || lpad((1 + i % 28)::text, 2, '0') || '.03.2024 um 10:' || lpad((i % 60)::text, 2, '0') ||
    ' übergeben, Betrag ' || (i * 13 % 900) || ',' || lpad((i % 100)::text, 2, '0') || ' €, Sendungsnummer 00340434' || lpad((i * 104729 % 1000000000000)::text, 12, '0')
FROM generate_series(1, 300) i;

CREATE TABLE commandes (
  id int PRIMARY KEY, commentaire text, suivi text
);
INSERT INTO commandes SELECT i,
  CASE WHEN i % 8 = 0 THEN 'Merci de m''appeler au 06 ' || lpad((i % 100)::text, 2, '0') || ' ' || lpad((i * 7 % 100)::text, 2, '0') || ' ' || lpad((i * 11 % 100)::text, 2, '0') || ' ' || lpad((i * 13 % 100)::text, 2, '0') || ' avant la livraison'
       WHEN i % 8 = 4 THEN 'Nouvelle adresse de facturation : client' || i || '@orange.fr'
       ELSE pick(ARRAY['Laisser chez le gardien','Livrer le matin','Emballage cadeau','Pas de facture dans le colis'], i) END,
  'Colis 6A' || lpad((i * 7919)::text, 11, '0') || ' expédié le ' || lpad((1 + i % 28)::text, 2, '0') || '/03/2024 à 10h' || lpad((i % 60)::text, 2, '0') ||
    ', montant ' || (1 + i % 9) || ' ' || lpad((i * 37 % 1000)::text, 3, '0') || ',' || lpad((i % 100)::text, 2, '0') || ' €, commande n° ' || (2024000000 + i)
FROM generate_series(1, 300) i;

CREATE TABLE pedidos (
  id int PRIMARY KEY, observaciones text, envio text
);
INSERT INTO pedidos SELECT i,
  CASE WHEN i % 6 = 0 THEN 'Llame al móvil 6' || lpad((i * 37 % 100)::text, 2, '0') || ' ' || lpad((i * 7 % 1000)::text, 3, '0') || ' ' || lpad((i * 11 % 1000)::text, 3, '0') || ' antes de entregar'
       WHEN i % 6 = 3 THEN 'Reembolso a la cuenta ' || de_iban(i) || ', gracias'
       ELSE pick(ARRAY['Dejar en conserjería','Entregar por la tarde','Envolver para regalo','Sin factura en la caja'], i) END,
  'Pedido ' || (5550000000 + i * 7) || ' enviado el 2024-03-' || lpad((1 + i % 28)::text, 2, '0') || ' 10:' || lpad((i % 60)::text, 2, '0') || ', importe ' || (i * 7 % 999) || ',' || lpad((i % 100)::text, 2, '0') || ' €, versión app 3.' || (i % 12) || '.' || i
FROM generate_series(1, 300) i;

CREATE TABLE ordini (
  id int PRIMARY KEY, note text, spedizione text
);
INSERT INTO ordini SELECT i,
  CASE WHEN i % 9 = 0 THEN 'Chiamatemi al cellulare 3' || lpad((i * 37 % 100)::text, 2, '0') || ' ' || lpad((i * 7919 % 10000000)::text, 7, '0') || ' prima della consegna'
       ELSE pick(ARRAY['Lasciare al portiere','Consegna al mattino','Confezione regalo','Niente fattura nel pacco'], i) END,
  'Ordine ' || (3470000000 + i * 13) || ' spedito il ' || lpad((1 + i % 28)::text, 2, '0') || '.03.2024 alle 10:' || lpad((i % 60)::text, 2, '0') || ', totale ' || (i * 7 % 999) || ',' || lpad((i % 100)::text, 2, '0') || ' €'
FROM generate_series(1, 300) i;

CREATE TABLE bestellingen (
  id int PRIMARY KEY, opmerking text, verzending text
);
INSERT INTO bestellingen SELECT i,
  CASE WHEN i % 10 = 0 THEN 'Graag even bellen op 06 ' || lpad((i * 7919 % 100000000)::text, 8, '0') || ' voor levering'
       ELSE pick(ARRAY['Afgeven bij de buren','Niet aanbellen','Levering na 14 uur','Cadeauverpakking graag'], i) END,
  'Zending 3S' || upper(substr(md5(i::text), 1, 4)) || lpad((i * 7919)::text, 9, '0') || ' verstuurd op 2024-03-' || lpad((1 + i % 28)::text, 2, '0') || 'T10:' || lpad((i % 60)::text, 2, '0') || ':00Z, bedrag € ' || (i * 7 % 999) || ',' || lpad((i % 100)::text, 2, '0')
FROM generate_series(1, 300) i;

CREATE TABLE encomendas (
  id int PRIMARY KEY, observacoes text, envio text
);
INSERT INTO encomendas SELECT i,
  CASE WHEN i % 5 = 0 THEN 'Entregar depois das 18h, contacto +351 9' || lpad((i * 7 % 100)::text, 2, '0') || ' ' || lpad((i * 11 % 1000)::text, 3, '0') || ' ' || lpad((i * 13 % 1000)::text, 3, '0')
       ELSE pick(ARRAY['Deixar na portaria','Entregar de manhã','Embrulhar para presente','Sem fatura na caixa'], i) END,
  'Encomenda ' || (9120000000 + i * 7) || ' enviada a ' || lpad((1 + i % 28)::text, 2, '0') || '/03/2024, CTT RR' || lpad((i * 7919 % 1000000000)::text, 9, '0') || 'PT, valor ' || (i * 3 % 500) || ',' || lpad((i % 100)::text, 2, '0') || ' €'
FROM generate_series(1, 300) i;

-- Payment memos with card numbers in some, and ones with none
CREATE TABLE payment_log (
  id int PRIMARY KEY, memo text, gateway_note text
);
INSERT INTO payment_log SELECT i,
  CASE WHEN i % 10 = 0 THEN 'Customer paid by phone with card ' || regexp_replace(luhn('4' || lpad((i * 7919)::text, 14, '0')), '(\d{4})(?=\d)', '\1 ', 'g')
       ELSE pick(ARRAY['Paid in full','Partial payment, rest next month','Refunded after return','Chargeback disputed'], i) END,
  'Gateway txn ' || luhn('4' || lpad((i * 104729)::text, 14, '0')) || ' settled at 2024-03-' || lpad((1 + i % 28)::text, 2, '0') || ' 10:22:' || lpad((i % 60)::text, 2, '0') || ', fee ' || (i % 9) || '.' || lpad((i % 100)::text, 2, '0')
FROM generate_series(1, 300) i;

-- Release notes and a support template: numbers, one hotline, no person
CREATE TABLE release_note (
  id int PRIMARY KEY, body text, footer text
);
INSERT INTO release_note SELECT i,
  'Version ' || (i % 5) || '.' || (i % 13) || '.' || i || ' (build ' || (20240000 + i) || ') fixes issue #' || (1000 + i * 7) || ' and upgrades libfoo from 1.2.' || (i % 9) || ' to 1.3.0-rc' || (i % 4),
  'Questions? Call our hotline 0800 123 4567 or write to support@shop.example, ticket ' || (7000000 + i)
FROM generate_series(1, 300) i;

-- A big table: sampled with TABLESAMPLE, not read whole
CREATE TABLE page_view (
  id bigint PRIMARY KEY, visitor_email text, path text, referrer text, duration_ms int, viewed_at timestamptz
);
INSERT INTO page_view SELECT i, 'v' || i || '@example.net', '/p/' || i % 500, pick(ARRAY['https://google.com','direct','https://news.ycombinator.com'], i),
  i % 60000, now() - (i || ' seconds')::interval
FROM generate_series(1, 200000) i;
ANALYZE;
