package scanner

import "testing"

// TestProseFind: one sentence each, in the languages of the name lists:
// what personal data it carries, and look-alikes that carry none (order
// numbers, timestamps, amounts, versions, tracking codes, article numbers).
func TestProseFind(t *testing.T) {
	tests := []struct {
		text string
		want proseKind
	}{
		// Phone numbers: E.164 anywhere, national next to a phone word.
		{"Please call me at 555-867-0010 before delivery", prosePhone},
		{"Call (555) 123-4567 after 6pm.", prosePhone},
		{"Reach me on +1 202 555 0143 any time", prosePhone},
		{"customer said: +4915112345678 is the new number", prosePhone},
		{"Bitte rufen Sie mich unter 0151 23456789 an.", prosePhone},
		{"Tel.: 030 1234567 (nur vormittags)", prosePhone},
		{"Handy-Nr 0171/2345678, bitte nur SMS", prosePhone},
		{"Merci de m'appeler au 06 12 34 56 78 avant la livraison", prosePhone},
		{"Portable : 06.12.34.56.78", prosePhone},
		{"Por favor llame al 612 345 678 antes de las 9", prosePhone},
		{"Móvil 612-345-678, gracias", prosePhone},
		{"Chiamatemi al 347 1234567 prima della consegna", prosePhone},
		{"Graag bellen op 06 12345678 voor levering", prosePhone},
		{"Ligue para +351 912 345 678 antes da entrega", prosePhone},
		{"telemóvel 912 345 678 depois das 18h", prosePhone},
		{"Mobile: +44 (0) 7700 900123.", prosePhone},
		// Emails, cards, IBANs.
		{"Send the invoice to mary.smith1@yahoo.com please", proseEmail},
		{"Nouvelle adresse (jean.dupont@orange.fr) à partir de lundi", proseEmail},
		{"Paid with card 4111 1111 1111 1111 exp 12/26", proseCard},
		{"Karte 5500-0000-0000-0004 abgelehnt", proseCard},
		{"visa 4012888888881881 charged twice", proseCard},
		{"Bitte auf DE89 3704 0044 0532 0130 00 überweisen", proseIBAN},
		{"Remboursement sur FR1420041010050500013M02606 svp", proseIBAN},
		{"Call 555-867-0010 or write to a.b@example.org", prosePhone | proseEmail},
		// Look-alikes: no personal data.
		{"Order #100234 shipped via UPS 1Z999AA10123456784 at 2024-03-01 10:22", 0},
		{"Tracking 9400 1000 0000 0000 0000 00, call the carrier if late", 0},
		{"FedEx 7489 1234 5678 delivered on 01.03.2024 10:22", 0},
		{"Refund of 1,234.56 EUR issued on 2024-03-01", 0},
		{"Betrag 1.234.567,89 € überwiesen am 01.03.2024", 0},
		{"Upgraded from 10.2.14 to 10.3.1 on 2024-03-01T10:22:05Z", 0},
		{"Order 0123456789 shipped in 2 boxes", 0},
		{"Commande 2024-0001234 expédiée le 01/03/2024", 0},
		{"Pedido 5558670010 enviado, importe 99.90", 0},
		{"Ordine 347 1234567 spedito", 0},                          // national shape, no phone word
		{"EAN 4006381333931 restocked, 120 units", 0},              // 13 digits: not a card in prose
		{"Transaction 4000123412341234 settled", 0},                // bare 16 digits, no card word
		{"Batch 4111 1111 1111 1112 rejected", 0},                  // grouped, fails Luhn
		{"Rechnung DE89 3704 0044 0532 0130 01 storniert", 0},      // IBAN shape, fails mod-97
		{"Server 10.0.12.200 restarted at 10:22, call ops", 0},     // an IP address is no phone
		{"Ticket closed, see KB-2024-03-01 and RFC 5322", 0},       // codes
		{"Unix time 1709288520 logged, phone later", 0},            // bare 10 digits
		{"Version 2.3.14-rc1 (build 20240301) released", 0},        // build date
		{"Shipment 1Z 999 AA1 01 2345 6784, contact the depot", 0}, // UPS grouped
		{"Replaced logo@2x.png and menu@3x.png, call design", 0},   // images, not addresses
		{"Conference call on 2024-03-01 at 10:22 in room 4.12", 0},
		{"Appel de fonds de 1 250 000,00 € le 01/03/2024", 0},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			if got, _ := proseFind(tt.text); got != tt.want {
				t.Fatalf("proseFind = %b, want %b", got, tt.want)
			}
		})
	}
}

// FuzzProseFind: any text, no panic, and an item for every kind found.
func FuzzProseFind(f *testing.F) {
	for _, s := range []string{"Please call me at 555-867-0010 before delivery", "IBAN DE89 3704 0044 0532 0130 00", "É1 ' ’ (+ ) -- / 0/ 0171/", "a@b.co, +4915112345678."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, items := proseFind(s)
		if (k != 0) != (len(items) > 0) {
			t.Fatalf("kinds %b with items %q", k, items)
		}
	})
}
