package scanner_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/scanner"
)

func col(name, typ string) nopii.Column {
	return nopii.Column{Name: name, Type: &nopii.Type{Schema: "pg_catalog", Name: typ}, Typmod: -1, TypeSQL: typ}
}

func repeat(n int, f func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// TestJudgeNames: names in several styles and languages, and words that
// say the column is about the thing, not the thing.
func TestJudgeNames(t *testing.T) {
	tests := []struct {
		name, typ, kind string
	}{
		{"email", "text", "email"}, {"e_mail", "text", "email"}, {"emailAddress", "varchar", "email"},
		{"E-Mail", "text", "email"}, {"correo", "text", "email"}, {"courriel", "text", "email"},
		{"telefon", "text", "phone"}, {"Telefonnummer", "text", "phone"}, {"mobile_phone", "text", "phone"},
		{"telefoonnummer", "text", "phone"}, {"geburtsdatum", "date", "birth_date"}, {"DOB", "date", "birth_date"},
		{"date_of_birth", "date", "birth_date"}, {"fecha_nacimiento", "date", "birth_date"},
		{"nachname", "text", "last_name"}, {"vorname", "text", "first_name"}, {"cognome", "text", "last_name"},
		{"firstName", "text", "first_name"}, {"customer_name", "text", "full_name"}, {"adresse", "text", "address"},
		{"strasse", "text", "address"}, {"Straße", "text", "address"}, {"plz", "text", "postcode"},
		{"zip_code", "text", "postcode"}, {"code_postal", "text", "postcode"}, {"ip_address", "text", "ip"},
		{"clientIP", "text", "ip"}, {"ssn", "text", "ssn"}, {"passport_number", "text", "national_id"},
		{"creditCardNumber", "text", "card"}, {"iban", "text", "iban"}, {"password_hash", "text", "password"},
		{"origin", "inet", "ip"},
		// Not PII, or not by the name: about the thing, wrong type, no person.
		{"email_verified", "bool", ""}, {"email_status", "text", ""}, {"address_id", "int8", ""},
		{"phone_count", "int4", ""}, {"card_type", "text", ""}, {"created_at", "timestamptz", ""},
		{"name", "text", ""}, {"product_name", "text", ""}, {"email_sent_at", "timestamptz", ""},
		{"id", "uuid", ""}, {"status", "text", ""}, {"company", "text", ""}, {"mac_address", "text", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := scanner.Judge(col(tt.name, tt.typ), nil)
			if tt.kind == "" {
				if ok {
					t.Fatalf("judged PII (%s, %s) but is not", f.Kind, f.Evidence)
				}
				return
			}
			if !ok || f.Kind != tt.kind || f.Rule == "" {
				t.Fatalf("got %q %v rule %q, want %q", f.Kind, ok, f.Rule, tt.kind)
			}
		})
	}
}

// TestJudgeComment: a column named by an abbreviation nobody lists is found
// by its comment.
func TestJudgeComment(t *testing.T) {
	c := col("c7", "bool")
	c.Comment = "Geburtsdatum des Kunden bekannt"
	if f, ok := scanner.Judge(c, nil); ok {
		t.Fatalf("a boolean judged %s by its comment", f.Kind)
	}
	c = col("c7", "date")
	c.Comment = "Geburtsdatum des Kunden"
	if f, ok := scanner.Judge(c, nil); !ok || f.Kind != "birth_date" || !strings.Contains(f.Evidence, "comment") {
		t.Fatalf("got %+v %v", f, ok)
	}
}

// TestJudgeValues: validators, not shapes.
func TestJudgeValues(t *testing.T) {
	tests := []struct {
		name, typ string
		values    []string
		kind      string
	}{
		{"c", "text", repeat(20, func(i int) string { return fmt.Sprintf("user%d@mail.example.com", i) }), "email"},
		{"c", "text", []string{"4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005", "6011111111111117", "4012888888881881"}, "card"},
		{"c", "int8", repeat(50, func(i int) string { return fmt.Sprint(1000000000000000 + i*7) }), ""}, // ids: some pass Luhn, none has an issuer prefix
		{"c", "text", []string{"DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606", "NL91ABNA0417164300", "ES9121000418450200051332"}, "iban"},
		{"c", "text", []string{"DE89 3704 0044 0532 0130 01", "GB82WEST12345698765431", "FR1420041010050500013M02607", "NL91ABNA0417164301", "ES9121000418450200051331"}, ""},
		{"c", "text", []string{"123-45-6789", "078-05-1120", "219-09-9999", "457-55-5462", "536-22-1234"}, "ssn"},
		{"c", "text", []string{"666-45-6789", "000-05-1120", "900-09-9999", "123-00-5462", "536-22-0000"}, ""},
		{"c", "text", []string{"12345678Z", "X1234567L", "AB123456C", "RSSMRA85T10A562S", "1 85 05 78 006 084 36"}, "national_id"},
		{"c", "text", []string{"10.0.0.1", "::1", "2001:db8::1", "192.168.1.20", "172.16.0.3"}, "ip"},
		{"c", "text", []string{"+1 555 010 0123", "+44 20 7946 0958", "030 1234567", "(555) 123-4567", "06 12 34 56 78", "+4915112345678", "0612345678"}, "phone"},
		{"c", "text", []string{"2020-01-02", "2021-03-04", "2019-05-06", "2018-07-08", "2017-09-10"}, ""},
		{"c", "text", []string{"12 Main Street", "Hauptstraße 5", "Calle Mayor 3", "5 rue de la Paix", "Kerkstraat 12"}, "address"},
		{"c", "text", []string{"Anna", "Thomas", "María", "Giulia", "Lukas", "Sophie", "Jean", "Pieter"}, "first_name"},
		{"c", "text", []string{"Anna Müller", "Thomas Schmidt", "María García", "Giulia Rossi", "Jan de Vries"}, "full_name"},
		{"c", "text", []string{"Widget Pro", "Blue Steel Hammer", "Cable 2m", "Laptop Stand", "USB Hub"}, ""},
		{"c", "text", []string{"$2b$12$abcdefghijklmnopqrstuv", "$2b$12$bbcdefghijklmnopqrstuv", "$argon2id$v=19$m=65536", "$2a$10$xyzxyzxyzxyzxyzxyzxyzx", "$2b$12$cbcdefghijklmnopqrstuv"}, "password"},
		{"c", "text", repeat(20, func(i int) string { return fmt.Sprintf("%064x", i*7919) }), ""},                                  // hashes
		{"c", "text", repeat(20, func(i int) string { return fmt.Sprintf("SKU-%05d-AB", i) }), ""},                                 // SKUs
		{"c", "text", repeat(20, func(i int) string { return fmt.Sprintf("%08d", 100000+i*37) }), ""},                              // zero-padded ids
		{"c", "text", repeat(20, func(i int) string { return fmt.Sprintf("%d.%d.%d", i%3, i%7, i) }), ""},                          // versions
		{"c", "text", repeat(20, func(i int) string { return fmt.Sprintf("%d.%02d", 100+i*13, i) }), ""},                           // amounts
		{"c", "date", repeat(40, func(i int) string { return fmt.Sprintf("%d-%02d-%02d", 1940+i, 1+i%12, 1+i%28) }), "birth_date"}, // adults decades apart
		{"c", "date", repeat(40, func(i int) string { return fmt.Sprintf("2024-%02d-%02d", 1+i%12, 1+i%28) }), ""},                 // recent events
		{"birth_date", "date", repeat(40, func(i int) string { return "2001-01-01" }), ""},                                         // all one day: a placeholder
		{"email", "text", repeat(20, func(i int) string { return "n/a" }), ""},                                                     // the name is wrong
		{"doc", "jsonb", repeat(10, func(i int) string {
			return fmt.Sprintf(`{"contact":{"email":"p%d@x.org","tel":"+4930123456%d"},"n":%d}`, i, i, i)
		}), "json"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			f, ok := scanner.Judge(col(tt.name, tt.typ), tt.values)
			if tt.kind == "" {
				if ok {
					t.Fatalf("judged %s (%s) but is not", f.Kind, f.Evidence)
				}
				return
			}
			if !ok || f.Kind != tt.kind {
				t.Fatalf("got %q %v (%s), want %q", f.Kind, ok, f.Evidence, tt.kind)
			}
			for _, v := range tt.values {
				if len(v) > 3 && strings.Contains(f.Evidence, v) {
					t.Fatalf("evidence quotes a value: %s", f.Evidence)
				}
			}
		})
	}
}

// TestJudgeJSON: paths inside documents, and a json rule that covers them.
func TestJudgeJSON(t *testing.T) {
	docs := repeat(20, func(i int) string {
		return fmt.Sprintf(`{"contact":{"email":"p%d@x.org"},"items":[{"sku":"A-%d","phone":"+4930123456%d"}],"first name":"Anna"}`, i, i, i)
	})
	f, ok := scanner.Judge(col("payload", "jsonb"), docs)
	if !ok || f.Kind != "json" {
		t.Fatalf("got %+v %v", f, ok)
	}
	got := map[string]string{}
	for _, p := range f.Paths {
		got[p.Path] = p.Kind
	}
	want := map[string]string{"$.contact.email": "email", "$.items[*].phone": "phone", "$['first name']": "first_name"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paths %v, want %v", got, want)
	}
	if f.Rule != `{ rule: json, paths: { "$.contact.email": { rule: redact_email }, "$.items[*].phone": { rule: fake, kind: phone }, "$['first name']": { rule: fake, kind: first_name } } }` {
		t.Fatalf("rule %s", f.Rule)
	}
}

// TestSuggestFitsType: the suggested rule compiles for the column's type.
func TestSuggestFitsType(t *testing.T) {
	for _, tt := range []struct{ name, typ, rule string }{
		{"card_number", "int8", "{ rule: hash }"}, {"birth_date", "date", "{ rule: shift_date, max_days: 365 }"},
		{"birth_date", "text", "{ rule: fake, kind: date_of_birth }"}, {"client_ip", "inet", "{ rule: fake, kind: ipv4 }"},
		{"phone", "int8", "{ rule: "}, {"password", "bytea", "{ rule: destroy }"},
	} {
		f, ok := scanner.Judge(col(tt.name, tt.typ), nil)
		if !ok || !strings.HasPrefix(f.Rule, tt.rule) {
			t.Errorf("%s %s: rule %q, want %q…", tt.name, tt.typ, f.Rule, tt.rule)
		}
	}
}

// prose makes n sampled values of a free-text column: one in every
// carries pii(i), the others are ordinary text(i).
func prose(n, every int, pii, text func(i int) string) []string {
	return repeat(n, func(i int) string {
		if i%every == 0 {
			return pii(i)
		}
		return text(i)
	})
}

// TestJudgeProse: personal data inside free text, in the languages of the
// name lists, with its share of the sample as evidence and a rule fit for
// prose; and prose whose numbers are order numbers, timestamps, amounts,
// versions and tracking codes, or one hotline repeated, which is none.
func TestJudgeProse(t *testing.T) {
	plain := func(i int) string {
		return []string{"Leave the parcel at the door", "Gift wrap, no invoice in the box", "Second floor, ring twice", "Deliver after 5pm"}[i%4]
	}
	tests := []struct {
		name     string
		values   []string
		evidence string // "" when not PII
	}{
		{"en phone 10%", prose(200, 10, func(i int) string { return fmt.Sprintf("Please call me at 555-867-%04d before delivery", i) }, plain),
			"inside prose: phone numbers in 10% of 200 sampled values"},
		{"de phone", prose(200, 5, func(i int) string { return fmt.Sprintf("Bitte vorher anrufen: 0151 2345%04d", i) }, plain),
			"inside prose: phone numbers in 20% of 200 sampled values"},
		{"fr phone", prose(100, 4, func(i int) string { return fmt.Sprintf("Merci de m'appeler au 06 12 34 %02d %02d", i%100, i/100) }, plain),
			"inside prose: phone numbers in 25% of 100 sampled values"},
		{"es phone", prose(100, 2, func(i int) string { return fmt.Sprintf("Llame al móvil 612 345 %03d, gracias", i) }, plain),
			"inside prose: phone numbers in 50% of 100 sampled values"},
		{"it phone", prose(100, 10, func(i int) string { return fmt.Sprintf("Chiamatemi al cellulare 347 12345%02d", i) }, plain),
			"inside prose: phone numbers in 10% of 100 sampled values"},
		{"nl phone", prose(100, 10, func(i int) string { return fmt.Sprintf("Graag bellen op 06 123456%02d", i) }, plain),
			"inside prose: phone numbers in 10% of 100 sampled values"},
		{"pt E.164", prose(100, 10, func(i int) string { return fmt.Sprintf("Entregar depois das 18h, +351 912 345 %03d", i) }, plain),
			"inside prose: phone numbers in 10% of 100 sampled values"},
		{"emails and phones", prose(200, 4, func(i int) string {
			if i%8 == 0 {
				return fmt.Sprintf("New address for invoices: t%d@example.com, thanks", i)
			}
			return fmt.Sprintf("Call back on +49 151 %07d tomorrow", i*7919)
		}, plain), "inside prose: phone numbers in 12%, email addresses in 12% of 200 sampled values"},
		{"cards and IBANs", prose(100, 5, func(i int) string {
			if i%10 == 0 {
				return []string{"Paid with 4111 1111 1111 1111", "Card 5500-0000-0000-0004 declined", "Visa 4012888888881881 charged"}[i/10%3]
			}
			return []string{"Refund to DE89 3704 0044 0532 0130 00", "Remboursement FR1420041010050500013M02606", "Reembolso ES91 2100 0418 4502 0005 1332"}[i/10%3]
		}, plain), "inside prose: card numbers in 10%, IBANs in 10% of 100 sampled values"},
		// Look-alikes.
		{"orders and tracking", repeat(200, func(i int) string {
			return fmt.Sprintf("Order #%d shipped via UPS 1Z999AA1%010d at 2024-03-%02d 10:%02d, call us if late", 100000+i, i*7919, 1+i%28, i%60)
		}), ""},
		{"amounts and versions", repeat(200, func(i int) string {
			return fmt.Sprintf("Upgraded to %d.%d.%d, refund of %d,%02d EUR (ref %010d)", i%5, i%13, i, 1000+i*37, i%100, 5000000000+i*7)
		}), ""},
		{"tracking numbers", repeat(200, func(i int) string {
			return fmt.Sprintf("Tracking 9400 1%03d %04d %04d %04d 00 handed to the carrier", i%1000, i*7%10000, i*13%10000, i*17%10000)
		}), ""},
		{"one hotline", repeat(200, func(i int) string {
			return fmt.Sprintf("Ticket %d: please call our hotline 0800 123 4567 or write to help@shop.example", i)
		}), ""},
		{"de Bestellungen", repeat(200, func(i int) string {
			return fmt.Sprintf("Bestellung %d vom %02d.03.2024 über %d,%02d € versandt, Paket %d", 4000000+i, 1+i%28, 10+i, i%100, 1000000000+i*7919)
		}), ""},
		{"one or two in a thousand", prose(1000, 500, func(i int) string { return fmt.Sprintf("call 555-867-%04d", i) }, plain), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := scanner.Judge(col("notes", "text"), tt.values)
			if tt.evidence == "" {
				if ok {
					t.Fatalf("judged %s (%s) but is not", f.Kind, f.Evidence)
				}
				return
			}
			if !ok || f.Kind != "free_text" || f.Evidence != tt.evidence || f.Rule != "{ rule: fake, kind: sentence }" || f.Confidence < 0.75 {
				t.Fatalf("got %v %q (%s) rule %s confidence %v, want free_text (%s)", ok, f.Kind, f.Evidence, f.Rule, f.Confidence, tt.evidence)
			}
			for _, v := range tt.values {
				for _, w := range strings.Fields(v) {
					if len(w) > 4 && strings.ContainsAny(w, "0123456789@") && strings.Contains(f.Evidence, w) {
						t.Fatalf("evidence quotes a value: %s", f.Evidence)
					}
				}
			}
		})
	}
	// A name that says phone over a column of prose: the prose decides.
	f, ok := scanner.Judge(col("phone_notes", "text"), prose(50, 2, func(i int) string { return fmt.Sprintf("call +1 202 555 %04d", i) }, plain))
	if !ok || f.Kind != "free_text" {
		t.Fatalf("phone_notes: got %v %+v", ok, f)
	}
}
