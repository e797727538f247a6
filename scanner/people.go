package scanner

import (
	"bufio"
	_ "embed"
	"sort"
	"strings"
	"time"
)

// The name lists: common first and family names of the US (from gofakeit's
// data, MIT) and of Germany, France, Spain, Italy, the Netherlands and
// Portugal, lower case with accents folded, one a line.
var (
	//go:embed names/first.txt
	firstNamesTxt string
	//go:embed names/last.txt
	lastNamesTxt string

	firstNames = nameSet(firstNamesTxt)
	lastNames  = nameSet(lastNamesTxt)
)

func nameSet(txt string) map[string]bool {
	m := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(txt))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && l[0] != '#' {
			m[l] = true
		}
	}
	return m
}

// nameStats is how a sample of values reads as people's names.
type nameStats struct {
	first, last, full float64 // fractions: a known first name, a known family name, "First [Middle] Last"
}

// personNames judges values against the name lists. A value counts only
// when it is words of letters (O'Brien, Jean-Luc, van Dijk): a product
// code or a sentence never does.
func personNames(values []string) nameStats {
	var st nameStats
	if len(values) == 0 {
		return st
	}
	var first, last, full int
	for _, v := range values {
		ws := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
		if len(ws) == 0 || len(ws) > 4 || !lettersOnly(v) {
			continue
		}
		ts := make([]string, len(ws))
		for i, w := range ws {
			var b strings.Builder
			for _, r := range w {
				fold(&b, r)
			}
			ts[i] = strings.Trim(b.String(), ".")
		}
		if len(ts) == 1 {
			if firstNames[ts[0]] || firstNames[strings.SplitN(ts[0], "-", 2)[0]] {
				first++
			}
			if lastNames[ts[0]] || lastNames[strings.SplitN(ts[0], "-", 2)[0]] {
				last++
			}
			continue
		}
		// "Ana García López", "Smith, John", "Dr. Jan de Vries".
		hasFirst, hasLast := false, false
		for _, t := range ts {
			hasFirst = hasFirst || firstNames[t]
			hasLast = hasLast || lastNames[t]
		}
		if hasFirst && (hasLast || len(ts) <= 3) && capitalized(ws) {
			full++
		}
	}
	n := float64(len(values))
	return nameStats{float64(first) / n, float64(last) / n, float64(full) / n}
}

func lettersOnly(s string) bool {
	for _, r := range s {
		if !(r == ' ' || r == '-' || r == '\'' || r == '.' || r == ',' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= 0xC0 && r <= 0x24F) {
			return false
		}
	}
	return true
}

// capitalized: names are written with capitals, except particles (van,
// de, da).
func capitalized(ws []string) bool {
	caps := 0
	for _, w := range ws {
		if r := []rune(w)[0]; r >= 'A' && r <= 'Z' || r >= 0xC0 && r <= 0xDE {
			caps++
		}
	}
	return caps >= 2
}

// dobStats is how a sample of dates reads as dates of birth.
type dobStats struct {
	plausible float64 // fraction of values that parse as a date 0–120 years ago
	days      int     // distinct days among them
	medianAge float64 // years
	spread    float64 // years between the 10th and 90th percentile ages
}

func birthDates(values []string, now time.Time) dobStats {
	var ages []float64
	days := map[string]bool{}
	for _, v := range values {
		t, ok := parseDate(v)
		if !ok {
			continue
		}
		age := now.Sub(t).Hours() / 24 / 365.25
		if age < 0 || age > 120 {
			continue
		}
		ages = append(ages, age)
		days[t.Format("2006-01-02")] = true
	}
	st := dobStats{days: len(days)}
	if len(values) == 0 || len(ages) == 0 {
		return st
	}
	sort.Float64s(ages)
	st.plausible = float64(len(ages)) / float64(len(values))
	st.medianAge = ages[len(ages)/2]
	st.spread = ages[len(ages)*9/10] - ages[len(ages)/10]
	return st
}

// postcodeShape: 3–10 letters, digits, spaces or dashes, with a digit
// (12345, 10115, SW1A 1AA, 1012 AB, 75001, 00144, 1000-001).
func postcodeShape(s string) bool {
	if len(s) < 3 || len(s) > 10 {
		return false
	}
	digit := false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == ' ', c == '-':
		default:
			return false
		}
	}
	return digit
}
