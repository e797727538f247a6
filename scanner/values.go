package scanner

import (
	"math/big"
	"net/netip"
	"strings"
	"time"
)

// A validator says whether one value (trimmed, non-empty) is of its kind.
// They are checks, not just shapes: a check digit, a range, a list.
type validator struct {
	kind  string
	check string // what passed, for the evidence
	valid func(string) bool
}

// valueValidators run in this order on each value; the first that accepts
// it claims it, so the most specific checks come first (a card number is
// not also a phone number, nor an SSN a phone number).
var valueValidators = []validator{
	{KindEmail, "the email syntax check", isEmail},
	{KindIBAN, "the IBAN mod-97 check", isIBAN},
	{KindCard, "the Luhn check with a card issuer prefix", isCard},
	{KindSSN, "the US SSN ranges", isSSN},
	{KindNationalID, "a national ID check (DNI/NIE letter, NIR key, NINO, codice fiscale)", isNationalID},
	{KindIP, "the IPv4/IPv6 syntax", isIP},
	{KindPassword, "the shape of a password hash (bcrypt, argon2, pbkdf2, scrypt)", isPasswordHash},
	{KindPhone, "the E.164 or national phone formats", isPhone},
	{KindAddress, "the shape of a street address (number and street word)", isStreet},
}

func isEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at > 64 || len(s) > 254 || strings.ContainsAny(s, " \t<>,;\"()[]\\") {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") || strings.Contains(local, "@") {
		return false
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c > 127) {
				return false
			}
		}
	}
	if l := labels[0]; len(l) == 2 && l[0] >= '1' && l[0] <= '9' && l[1] == 'x' {
		return false // an image for high-density screens: logo@2x.png
	}
	tld := labels[len(labels)-1]
	if len(tld) < 2 {
		return false
	}
	for _, c := range tld {
		if c >= '0' && c <= '9' {
			return false
		}
	}
	return true
}

// digits returns the digits of s when s holds only digits and the given
// separators, else "".
func digits(s, seps string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case strings.ContainsRune(seps, c):
		default:
			return ""
		}
	}
	return b.String()
}

func luhn(d string) bool {
	sum, double := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if double {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return sum%10 == 0
}

// isCard: 13–19 digits, spaces or dashes allowed, a valid Luhn digit and
// the prefix of a card network (Visa, Mastercard, Amex, Discover, JCB,
// Diners, Maestro, UnionPay): a numeric id passes Luhn one time in ten,
// rarely with an issuer prefix too.
func isCard(s string) bool {
	d := digits(s, " -")
	if len(d) < 13 || len(d) > 19 || !luhn(d) {
		return false
	}
	p2, p4 := atoi(d[:2]), atoi(d[:4])
	switch {
	case d[0] == '4': // Visa
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
	case p2 == 34 || p2 == 37: // Amex
		return len(d) == 15
	case p4 == 6011, p2 == 65, p4 >= 6440 && p4 <= 6499: // Discover
	case p2 == 35: // JCB
	case p2 == 36, p2 == 38, p2 == 30: // Diners
	case p2 == 50, p2 >= 56 && p2 <= 58, p2 == 62, p2 == 67, p2 == 63: // Maestro, UnionPay
	default:
		return false
	}
	return true
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// ibanLengths is the IBAN length of each country that has one.
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
	"FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
	"HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21,
	"LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30,
	"NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
	"SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}

// isIBAN: a country's length and the ISO 13616 mod-97 check.
func isIBAN(s string) bool {
	s = strings.ToUpper(strings.ReplaceAll(s, " ", ""))
	if len(s) < 15 || len(s) > 34 || ibanLengths[s[:2]] != len(s) || s[2] < '0' || s[2] > '9' || s[3] < '0' || s[3] > '9' {
		return false
	}
	var b strings.Builder
	for _, c := range s[4:] + s[:4] {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case c >= 'A' && c <= 'Z':
			b.WriteString(itoa(int(c-'A') + 10))
		default:
			return false
		}
	}
	return mod97(b.String()) == 1
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func mod97(d string) int {
	r := 0
	for _, c := range d {
		r = (r*10 + int(c-'0')) % 97
	}
	return r
}

// isSSN: AAA-GG-SSSS (dashes or spaces) in the ranges the SSA issues:
// area 001–899 except 666, group 01–99, serial 0001–9999.
func isSSN(s string) bool {
	if len(s) != 11 || (s[3] != '-' && s[3] != ' ') || s[6] != s[3] {
		return false
	}
	d := digits(s, "- ")
	if len(d) != 9 {
		return false
	}
	area, group, serial := atoi(d[:3]), atoi(d[3:5]), atoi(d[5:])
	return area > 0 && area < 900 && area != 666 && group > 0 && serial > 0
}

const dniLetters = "TRWAGMYFPDXBNJZSQVHLCKE"

// isNationalID: a Spanish DNI or NIE (check letter), a French NIR (key
// 97 − n mod 97), a British NINO or an Italian codice fiscale (shapes with
// the letters each excludes). Dutch BSNs and such bare digit strings are
// left to the column's name: one random 9-digit id in 11 passes the BSN
// check.
func isNationalID(s string) bool {
	u := strings.ToUpper(strings.ReplaceAll(strings.ReplaceAll(s, " ", ""), "-", ""))
	switch {
	case len(u) == 9 && u[8] >= 'A' && u[8] <= 'Z': // DNI 12345678Z, NIE X1234567L
		num := u[:8]
		if p := strings.IndexByte("XYZ", u[0]); p >= 0 {
			num = itoa(p) + u[1:8]
		}
		if digits(num, "") != num {
			return false
		}
		return dniLetters[atoi(num)%23] == u[8]
	case len(u) == 15 && digits(u, "") == u && (u[0] == '1' || u[0] == '2'): // NIR
		n, _ := new(big.Int).SetString(u[:13], 10)
		key := 97 - new(big.Int).Mod(n, big.NewInt(97)).Int64()
		return int64(atoi(u[13:])) == key
	case len(u) == 9 && isLetters(u[:2]) && digits(u[2:8], "") == u[2:8] && strings.ContainsRune("ABCD", rune(u[8])): // NINO
		return !strings.ContainsAny(u[:2], "DFIQUV") && u[1] != 'O' && !strings.Contains("BG GB KN NK NT TN ZZ", u[:2])
	case len(u) == 16 && isLetters(u[:6]) && digits(u[6:8], "") == u[6:8] && isLetters(u[8:9]) &&
		digits(u[9:11], "") == u[9:11] && isLetters(u[11:12]) && digits(u[12:15], "") == u[12:15] && isLetters(u[15:]):
		return strings.ContainsRune("ABCDEHLMPRST", rune(u[8])) // codice fiscale: the month letter
	}
	return false
}

func isLetters(s string) bool {
	for _, c := range s {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return s != ""
}

func isIP(s string) bool {
	if strings.Count(s, ".") != 3 && !strings.Contains(s, ":") {
		return false
	}
	if p, err := netip.ParsePrefix(s); err == nil { // inet/cidr text: 10.0.0.0/8
		s = p.Addr().String()
	}
	a, err := netip.ParseAddr(s)
	return err == nil && (a.Is4() || a.Is6())
}

func isPasswordHash(s string) bool {
	for _, p := range []string{"$2a$", "$2b$", "$2y$", "$argon2", "pbkdf2_sha256$", "$pbkdf2", "scrypt:", "$scrypt$", "$6$", "$5$", "$1$"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// isPhone accepts E.164 (+ and 8–15 digits, not starting with 0), the
// international prefix 00, and national formats with a trunk 0 or
// separators: (555) 123-4567, 030 1234567, 06 12 34 56 78. A bare run of
// digits without + or a leading 0 is an id or an amount, not a phone
// number; so is anything that parses as a date.
func isPhone(s string) bool {
	if isDate(s) {
		return false
	}
	intl := strings.HasPrefix(s, "+")
	body := strings.TrimPrefix(s, "+")
	d := digits(body, " -().")
	if d == "" || len(d) < 7 || len(d) > 15 {
		return false
	}
	if strings.Count(body, "(") != strings.Count(body, ")") || strings.Count(body, ".") > 0 && strings.ContainsAny(body, " -") {
		return false
	}
	bare := len(d) == len(body) // no separators: ids look like this too
	switch {
	case intl:
		return d[0] != '0' && len(d) >= 8
	case strings.HasPrefix(d, "00"):
		return !bare && len(d) >= 10 && d[2] != '0'
	case d[0] == '0':
		return d[1] != '0' && len(d) >= 9 && (!bare || len(d) == 10 || len(d) == 11)
	}
	// A national number without trunk prefix (US): 10 digits in groups.
	if len(d) != 10 || len(d) == len(body) {
		return false
	}
	groups := strings.FieldsFunc(body, func(r rune) bool { return strings.ContainsRune(" -().", r) })
	return len(groups) >= 2 && len(groups) <= 4 && d[0] >= '2'
}

// streetWords end or start street names in the languages the name lists
// cover.
var streetWords = map[string]bool{
	"street": true, "st": true, "avenue": true, "ave": true, "road": true, "rd": true, "lane": true, "ln": true,
	"boulevard": true, "blvd": true, "drive": true, "dr": true, "way": true, "court": true, "ct": true,
	"place": true, "pl": true, "terrace": true, "square": true, "sq": true, "parkway": true, "highway": true,
	"strasse": true, "str": true, "weg": true, "allee": true, "platz": true, "gasse": true, "ring": true,
	"damm": true, "ufer": true, "rue": true, "chemin": true, "impasse": true, "quai": true, "calle": true,
	"avenida": true, "av": true, "plaza": true, "paseo": true, "carrer": true, "via": true, "viale": true,
	"piazza": true, "corso": true, "vicolo": true, "straat": true, "laan": true, "plein": true, "gracht": true,
	"kade": true, "singel": true, "dijk": true, "rua": true, "travessa": true, "praca": true, "largo": true,
	"estrada": true, "alameda": true,
}

// streetSuffixes are the German and Dutch street words written as one
// with the name: Hauptstraße, Kerkstraat, Lindenweg.
var streetSuffixes = []string{"strasse", "str", "weg", "allee", "platz", "gasse", "straat", "laan", "plein", "gracht", "ring", "damm"}

// isStreet: a house number and a street word, in either order (12 Main
// Street, Hauptstraße 5, Calle Mayor 3, 5 rue de la Paix).
func isStreet(s string) bool {
	if !strings.ContainsRune(s, ' ') || !strings.ContainsAny(s, "0123456789") {
		return false
	}
	ts := tokens(s)
	if len(ts) < 2 || len(ts) > 12 {
		return false
	}
	num, street := false, false
	for _, t := range ts {
		if t[0] >= '0' && t[0] <= '9' && len(t) <= 6 {
			num = true
		}
		if streetWords[t] {
			street = true
		}
		for _, suf := range streetSuffixes {
			if len(t) > len(suf)+2 && strings.HasSuffix(t, suf) {
				street = true
			}
		}
	}
	return num && street
}

// parseDate reads the date at the start of a value: ISO (2006-01-02, with
// a time or not), 02.01.2006, 02/01/2006 or 01/02/2006.
func parseDate(s string) (time.Time, bool) {
	// Cheap shape check first: time.Parse allocates an error per miss.
	if len(s) >= 10 && (s[4] == '-' || s[2] == '.' || s[2] == '/') {
		for _, layout := range []string{"2006-01-02", "02.01.2006", "02/01/2006", "01/02/2006"} {
			if t, err := time.Parse(layout, s[:10]); err == nil && (len(s) == 10 || s[10] == ' ' || s[10] == 'T') {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

func isDate(s string) bool { _, ok := parseDate(s); return ok }
