package scanner

import (
	"fmt"
	"strings"
)

// What prose can carry, one bit each: a value may carry several.
type proseKind uint8

const (
	prosePhone proseKind = 1 << iota
	proseEmail
	proseCard
	proseIBAN
)

// proseKinds in the order the evidence names them.
var proseKinds = []struct {
	kind proseKind
	what string
}{{prosePhone, "phone numbers"}, {proseEmail, "email addresses"}, {proseCard, "card numbers"}, {proseIBAN, "IBANs"}}

// phoneVerbs are the words next to which a national number is a phone
// number, in the languages of the name lists, besides the phone words of
// those lists (phone, tel, telefon, mobile, handy, portable…): to call, to
// ring back, to be reachable, to contact.
var phoneVerbs = map[string]bool{
	"call": true, "calls": true, "called": true, "calling": true, "callback": true, "ring": true, "dial": true,
	"reach": true, "reachable": true, "contact": true, "whatsapp": true, "sms": true, "hotline": true,
	"anrufen": true, "anruf": true, "ruf": true, "rufe": true, "rufen": true, "ruft": true, "ruckruf": true,
	"zuruckrufen": true, "erreichbar": true, "erreichen": true, "kontakt": true,
	"appeler": true, "appelez": true, "appelle": true, "appel": true, "rappeler": true, "rappelez": true,
	"joindre": true, "joignable": true, "contacter": true,
	"llamar": true, "llame": true, "llamame": true, "llamen": true, "llamada": true, "contactar": true, "contacto": true,
	"chiamare": true, "chiami": true, "chiamami": true, "chiamatemi": true, "chiamata": true, "richiamare": true,
	"contattare": true, "contatto": true, "reperibile": true,
	"bellen": true, "bel": true, "belt": true, "terugbellen": true, "bereikbaar": true,
	"ligar": true, "ligue": true, "liga": true, "ligacao": true, "contato": true, "contactar-me": true,
}

// cardWords are the words next to which a bare run of 15–19 digits that
// passes the card check is a card number; grouped as cards print it, it
// needs none.
var cardWords = map[string]bool{
	"visa": true, "mastercard": true, "amex": true, "maestro": true, "discover": true, "jcb": true,
	"karte": true, "carte": true, "tarjeta": true, "carta": true, "kaart": true, "cartao": true,
	"paid": true, "bezahlt": true, "paye": true, "pagado": true, "pagato": true, "betaald": true, "pago": true,
}

// phoneContext reports whether a word names a phone or the act of calling.
func phoneContext(w string) bool {
	if phoneVerbs[w] || words[w] == KindPhone {
		return true
	}
	k, ok := stem(w)
	return ok && k == KindPhone
}

func cardContext(w string) bool { return cardWords[w] || words[w] == KindCard }

// proseWord is one word of prose with its surrounding punctuation trimmed.
type proseWord struct {
	text  string
	low   []string // its words, lower-case and accent-folded, for the context lists
	stop  bool     // a separator or the end of a sentence follows: numbers do not run on past it
	digit bool     // only digits and the separators of phone and card numbers
}

// hardStops split a word and end a run of numbers: 10:22, 12/26, a;b.
const hardStops = ",;:/|=\\"

func proseWords(s string) []proseWord {
	var out []proseWord
	for _, field := range strings.Fields(s) {
		if a, b, ok := strings.Cut(field, "/"); ok && strings.HasPrefix(a, "0") && numberWord(a) && numberWord(strings.TrimRight(b, ".,;:!?)")) {
			field = a + "-" + b // an area code written 0171/2345678
		}
		parts := strings.FieldsFunc(field, func(r rune) bool { return strings.ContainsRune(hardStops, r) })
		endsHard := strings.ContainsRune(hardStops, rune(field[len(field)-1]))
		for i, p := range parts {
			t := strings.TrimLeft(p, "\"'<[{#*«“")
			t = strings.TrimRight(t, "\"'>]}*»”")
			end := strings.TrimRight(t, ".!?")
			stop := len(end) < len(t) || i < len(parts)-1 || endsHard
			if end == "" {
				if stop && len(out) > 0 {
					out[len(out)-1].stop = true
				}
				continue
			}
			var low []string // m'appeler, l'appel: the word after the elision
			for _, e := range strings.FieldsFunc(end, func(r rune) bool { return r == '\'' || r == '’' }) {
				low = append(low, tokens(e)...)
			}
			out = append(out, proseWord{text: end, low: low, stop: stop, digit: numberWord(end)})
		}
	}
	return out
}

// numberWord: digits with the separators of phone and card numbers, a +
// only in front: +49, (030), 555-867-0010, 06.12.34.56.78.
func numberWord(w string) bool {
	hasDigit := false
	for i, r := range w {
		switch {
		case r >= '0' && r <= '9':
			hasDigit = true
		case r == '+' && (i == 0 || i == 1 && w[0] == '('):
		case r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return false
		}
	}
	return hasDigit
}

// proseFind is what one prose value carries, and the items found (the
// digits of a number, an email address lower-cased) so that a column where
// one company address repeats is told from one with people's details.
// The items stay in memory: they never reach a finding.
func proseFind(s string) (proseKind, []string) {
	ws := proseWords(s)
	if len(ws) < 2 || !hasLetters(s) {
		return 0, nil // not prose: bare values are judged by the validators
	}
	var found proseKind
	var items []string
	near := func(at, before, after int, ctx func(string) bool) bool {
		for k := max(at-before, 0); k < min(at+after+1, len(ws)); k++ {
			if ws[k].digit {
				continue
			}
			for _, t := range ws[k].low {
				if ctx(t) {
					return true
				}
			}
		}
		return false
	}
	for i := 0; i < len(ws); i++ {
		w := ws[i]
		switch {
		case isEmail(strings.Trim(w.text, "()")):
			found |= proseEmail
			items = append(items, strings.ToLower(strings.Trim(w.text, "()")))
			continue
		case !w.digit:
			if iban, n := ibanInProse(ws[i:]); n > 0 {
				found |= proseIBAN
				items = append(items, iban)
				i += n - 1
			}
			continue
		}
		// A run of number words up to a stop; dates and IP addresses in it
		// are neither phones nor cards and end it.
		j := i
		for j < len(ws) && ws[j].digit && !isDate(ws[j].text) && !isIP(ws[j].text) {
			j++
			if ws[j-1].stop {
				break
			}
		}
		if j == i { // a date or an IP address
			continue
		}
		run := ws[i:j]
		if len(run) > maxRunWords || i > 0 && !ws[i-1].stop && mixed(ws[i-1].text) {
			i = j - 1 // a table of numbers, or the tail of a code: 1Z 999 AA1 01 2345 6784
			continue
		}
		if card, ok := cardInProse(run); ok && (len(run) > 1 || strings.Contains(run[0].text, "-") || near(i, 4, 0, cardContext)) {
			found |= proseCard
			items = append(items, card)
		} else if phone := joinRun(run); isPhone(phone) || nineDigits(phone) {
			d := digits(strings.TrimPrefix(phone, "+"), " -().")
			// E.164 stands alone; a national number is one next to a phone
			// word, else order numbers and amounts in groups would count.
			if strings.HasPrefix(phone, "+") && len(d) >= 10 && isPhone(phone) || near(i, 4, len(run), phoneContext) {
				found |= prosePhone
				items = append(items, d)
			}
		}
		i = j - 1
	}
	return found, items
}

// maxRunWords: a run of more number words than a phone or card number is
// printed in is something else (a list of figures, a long tracking code).
const maxRunWords = 7

// nineDigits: the national numbers of Spain and Portugal, nine digits
// without a trunk 0, in groups (612 345 678, 912-345-678). isPhone leaves
// them out (as bare values they are ids); next to a phone word they count.
func nineDigits(s string) bool {
	d := digits(s, " -.")
	return len(d) == 9 && d[0] >= '2' && len(d) < len(s) && !isDate(s)
}

// mixed: a word of letters and digits, as codes are (AA1, 1Z999AA1).
func mixed(w string) bool {
	return hasLetters(w) && strings.ContainsAny(w, "0123456789")
}

// joinRun joins number words with spaces, dropping parentheses that do not
// pair up across the run: "(call me on 030 1234567)".
func joinRun(run []proseWord) string {
	parts := make([]string, len(run))
	for k, w := range run {
		parts[k] = w.text
	}
	s := strings.Join(parts, " ")
	if strings.Count(s, "(") != strings.Count(s, ")") {
		s = strings.TrimSuffix(strings.TrimPrefix(s, "("), ")")
	}
	return s
}

// cardInProse: the whole run, or its first four groups of four digits (three
// groups of 4-6-5 for Amex) followed by at most four more digits (an expiry
// month), passes the card check with 15 digits or more. Shorter card
// numbers are too like article numbers to count in prose.
func cardInProse(run []proseWord) (string, bool) {
	try := func(ws []proseWord) (string, bool) {
		s := joinRun(ws)
		d := digits(s, " -")
		return d, len(d) >= 15 && isCard(s)
	}
	if d, ok := try(run); ok {
		return d, true
	}
	for _, groups := range [][]int{{4, 4, 4, 4}, {4, 6, 5}} {
		if len(run) <= len(groups) {
			continue
		}
		shape, rest := true, 0
		for k, g := range groups {
			shape = shape && len(run[k].text) == g
		}
		for _, w := range run[len(groups):] {
			rest += len(digits(w.text, "-()."))
		}
		if shape && rest <= 4 {
			if d, ok := try(run[:len(groups)]); ok {
				return d, true
			}
		}
	}
	return "", false
}

// ibanInProse: an IBAN written whole (DE89370400440532013000) or in groups
// (DE89 3704 0044 0532 0130 00) at the start of ws; how many words it took.
func ibanInProse(ws []proseWord) (string, int) {
	first := ws[0].text
	if len(first) < 4 || !isLetters(first[:2]) || first[2] < '0' || first[2] > '9' || first[3] < '0' || first[3] > '9' {
		return "", 0
	}
	want := ibanLengths[first[:2]]
	if want == 0 {
		return "", 0
	}
	s := first
	n := 1
	for len(s) < want && n < len(ws) && !ws[n-1].stop && len(ws[n].text) <= 4 && alnum(ws[n].text) {
		s += ws[n].text
		n++
	}
	if len(s) == want && isIBAN(s) {
		return strings.ToUpper(s), n
	}
	return "", 0
}

func alnum(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return s != ""
}

func hasLetters(s string) bool {
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c > 127 {
			return true
		}
	}
	return false
}

// proseStats counts, over the sampled values of a column, the values that
// carry each kind, any kind, and the distinct items found.
type proseStats struct {
	n, any int
	per    map[proseKind]int
	items  map[string]bool
}

func (p *proseStats) add(s string) {
	k, items := proseFind(s)
	if k == 0 {
		return
	}
	if p.per == nil {
		p.per, p.items = map[proseKind]int{}, map[string]bool{}
	}
	p.any++
	for _, pk := range proseKinds {
		if k&pk.kind != 0 {
			p.per[pk.kind]++
		}
	}
	for _, it := range items {
		if len(p.items) < maxProseItems {
			p.items[it] = true
		}
	}
}

// Prose is judged to hold personal data when at least minProseFrac of its
// values carry some, and at least minProseItems distinct ones are found:
// one hotline number or support address repeated in a template is not a
// person's. maxProseItems bounds the memory of the count.
const (
	minProseFrac  = 0.01
	minProseItems = 3
	maxProseItems = 64
)

func (p proseStats) frac() float64 { return float64(p.any) / float64(max(p.n, 1)) }

func (p proseStats) judged() bool {
	return p.n >= minValues && p.frac() >= minProseFrac && len(p.items) >= minProseItems
}

// evidence: "inside prose: phone numbers in 12%, email addresses in 3% of
// 200 sampled values". Shares under 1% print as <1%.
func (p proseStats) evidence() string {
	var parts []string
	for _, pk := range proseKinds {
		if c := p.per[pk.kind]; c > 0 {
			parts = append(parts, fmt.Sprintf("%s in %s", pk.what, percent(c, p.n)))
		}
	}
	return fmt.Sprintf("inside prose: %s of %d sampled values", strings.Join(parts, ", "), p.n)
}

func percent(c, n int) string {
	if pct := float64(c) * 100 / float64(n); pct >= 0.5 {
		return fmt.Sprintf("%.0f%%", pct)
	}
	return "<1%"
}

// confidence grows with the share of values that carry personal data: 0.75
// at a few, 0.95 from a quarter up.
func (p proseStats) confidence() float64 {
	return round(0.75 + 0.2*min(1, p.frac()/0.25))
}
