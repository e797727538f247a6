package scanner

import (
	"fmt"
	"strings"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/rulesets"
)

// Finding is a column judged to hold personal data.
type Finding struct {
	Kind       string  // one of the Kind constants
	Confidence float64 // 0–1
	Evidence   string  // what matched: words of the name, fractions of values; never a value
	// Rule is the suggested rule as YAML flow ({ rule: redact_email }),
	// checked to compile for the column's type; Spec is the same rule.
	Rule string
	Spec map[string]any
	// Paths are the findings inside a json/jsonb column (Kind json).
	Paths []PathFinding
}

// PathFinding is PII found at one path of the documents of a json column.
type PathFinding struct {
	Path       string  `json:"path"` // $.contact.email, $.items[*].phone
	Kind       string  `json:"kind"`
	Confidence float64 `json:"confidence"`
	Evidence   string  `json:"evidence"`
}

// typeClass groups column types by what their values can hold.
type typeClass int

const (
	classNone typeClass = iota // booleans, uuids, money, geometry…: never judged PII
	classText
	classJSON
	classInt // integers and numeric: phone, SSN, card numbers stored as numbers
	classDate
	classInet
	classBytes
)

func classOf(c nopii.Column) (typeClass, bool) {
	t := c.Type.Underlying()
	array := false
	if t.Kind == nopii.TypeArray && t.Elem != nil {
		t, array = t.Elem.Underlying(), true
	}
	switch t.Name {
	case "text", "varchar", "bpchar", "citext", "name":
		return classText, array
	case "json", "jsonb":
		return classJSON, array
	case "int8", "numeric":
		return classInt, array
	case "int4", "int2":
		return classInt, array // phone or national id stored as a number; values are not judged
	case "date", "timestamp", "timestamptz":
		return classDate, array
	case "inet", "cidr":
		return classInet, array
	case "bytea":
		return classBytes, array
	}
	return classNone, array
}

// fits says which kinds a class of column can hold.
func fits(kind string, cl typeClass) bool {
	switch cl {
	case classText:
		return true
	case classInt:
		return kind == KindPhone || kind == KindSSN || kind == KindNationalID || kind == KindCard
	case classDate:
		return kind == KindBirthDate
	case classInet:
		return kind == KindIP
	case classBytes:
		return kind == KindPassword
	}
	return false
}

// NeedsValues reports whether Judge looks at the values of a column of this
// type; the others are judged by type, name and comment alone.
func NeedsValues(c nopii.Column) bool {
	cl, array := classOf(c)
	if array {
		return false
	}
	switch cl {
	case classText, classJSON, classDate:
		return true
	case classInt:
		t := c.Type.Underlying().Name
		return t == "int8" || t == "numeric"
	}
	return false
}

// Confidence of a judgement from the name alone, the comment alone, and
// the least fraction of sampled values that must pass a check for values
// alone to judge a column.
const (
	nameConfidence    = 0.7
	commentConfidence = 0.6
	minValues         = 5 // fewer sampled values than this say nothing
)

// now is the clock for ages; tests do not need another.
var now = time.Now

// Judge classifies one column from its type, name, comment and sampled
// values (non-NULL, as text; ignored unless NeedsValues). The suggested
// rule compiles for the column's type. The evidence never quotes a value.
func Judge(c nopii.Column, values []string) (Finding, bool) {
	cl, _ := classOf(c)
	if cl == classNone {
		return Finding{}, false
	}
	if !NeedsValues(c) {
		values = nil
	}
	var f Finding
	var ok bool
	switch cl {
	case classInet:
		// inet holds a host's address; cidr a network, personal only when
		// its name says so.
		if c.Type.Underlying().Name == "inet" {
			f, ok = Finding{Kind: KindIP, Confidence: 0.95, Evidence: "column type inet"}, true
		} else {
			f, ok = judgeColumn(c, cl, nil)
		}
	case classJSON:
		f, ok = judgeJSON(values)
	default:
		f, ok = judgeColumn(c, cl, values)
	}
	if !ok {
		return Finding{}, false
	}
	f.Spec = suggest(c, f, values)
	if f.Spec == nil {
		return Finding{}, false
	}
	f.Rule = rulesets.FlowYAML(f.Spec)
	return f, true
}

// reliable kinds have validators that real values of the kind pass: when
// none of many sampled values does, the name was wrong (a card column
// holding "Visa", an email column holding "n/a"). SSNs are not: they are
// often stored as bare digits, which the check leaves alone.
var reliable = map[string]bool{KindEmail: true, KindIP: true, KindCard: true, KindIBAN: true}

func judgeColumn(c nopii.Column, cl typeClass, values []string) (Finding, bool) {
	hit, byName := judgeName(c.Name)
	base, source := nameConfidence, fmt.Sprintf("name word %q", hit.word)
	if !byName {
		if hit, byName = judgeComment(c.Comment); byName {
			base, source = commentConfidence, fmt.Sprintf("comment words %q", hit.word)
		}
	}
	if byName && !fits(hit.kind, cl) {
		byName = false
	}
	vk := judgeValues(cl, values)
	n := len(values)
	if byName {
		frac, check := vk.support(hit.kind)
		switch {
		case n < minValues || check == "":
			return Finding{Kind: hit.kind, Confidence: base, Evidence: source}, true
		case frac == 0 && n >= 10 && vk.kind == KindFreeText:
			return vk.finding(n), true // contact_notes: prose, with what the name says inside
		case frac == 0 && n >= 10 && reliable[hit.kind]:
			if vk.kind != "" { // values say what it is instead
				return vk.finding(n), true
			}
			return Finding{}, false
		case contradicts(hit.kind, frac, n):
			return Finding{}, false
		}
		return Finding{Kind: hit.kind, Confidence: round(1 - (1-base)*(1-frac)),
			Evidence: fmt.Sprintf("%s; %.0f%% of %d sampled values pass %s", source, frac*100, n, check)}, true
	}
	if vk.kind != "" {
		return vk.finding(n), true
	}
	return Finding{}, false
}

// contradicts: values that plainly are not of the kind the name says.
func contradicts(kind string, frac float64, n int) bool {
	switch kind {
	case KindBirthDate, KindPostcode, KindCity:
		return n >= 10 && frac < 0.2
	}
	return false
}

func round(x float64) float64 { return float64(int(x*100+0.5)) / 100 }

// valueJudgement is what the sampled values of a column say.
type valueJudgement struct {
	kind, check string
	frac        float64
	fracs       map[string]float64 // per kind, from the validators
	checks      map[string]string
	dob         dobStats
	names       nameStats
	postcodes   float64
	words       float64    // fraction of values that are words of letters (city)
	prose       proseStats // emails, phone, card and IBAN numbers inside prose
	distinct    int        // distinct values
}

// support is the fraction of values that pass the check of kind, and
// which check that is ("" when kind has none).
func (v valueJudgement) support(kind string) (float64, string) {
	switch kind {
	case KindBirthDate:
		if v.dob.days <= 1 && v.dob.plausible > 0 {
			return 0, "the date of birth check (all on one day)"
		}
		return v.dob.plausible, "the date of birth check (ages 0–120)"
	case KindFirstName:
		return v.names.first, "the first-name list"
	case KindLastName:
		return v.names.last, "the family-name list"
	case KindFullName:
		return max(v.names.full, v.names.first, v.names.last), "the name lists"
	case KindPostcode:
		return v.postcodes, "the postcode shape"
	case KindCity:
		return v.words, "the place-name shape (words of letters)"
	case KindFreeText:
		return v.prose.frac(), "the email, phone, card and IBAN checks inside prose"
	}
	if c, ok := v.checks[kind]; ok {
		return v.fracs[kind], c
	}
	return 0, ""
}

func (v valueJudgement) finding(n int) Finding {
	if v.kind == KindFreeText {
		return Finding{Kind: v.kind, Confidence: v.prose.confidence(), Evidence: v.prose.evidence()}
	}
	return Finding{Kind: v.kind, Confidence: round(v.frac * 0.95),
		Evidence: fmt.Sprintf("%.0f%% of %d sampled values pass %s", v.frac*100, n, v.check)}
}

// Thresholds for values alone to judge a column.
const (
	minFrac       = 0.6 // strong validators: email, IBAN, card, SSN, national ID, IP, hashes
	minPhoneFrac  = 0.7
	minStreetFrac = 0.5
	minNameFrac   = 0.6
	minDOBFrac    = 0.95
)

func judgeValues(cl typeClass, values []string) valueJudgement {
	v := valueJudgement{fracs: map[string]float64{}, checks: map[string]string{}}
	n := len(values)
	if n == 0 {
		return v
	}
	counts := map[string]int{}
	words, postcodes := 0, 0
	v.prose.n = n
	seen := map[string]bool{}
	for _, raw := range values {
		s := strings.TrimSpace(raw)
		seen[s] = true
		if s == "" {
			continue
		}
		for _, val := range valueValidators {
			if cl == classInt && val.kind != KindCard && val.kind != KindPhone {
				continue
			}
			if val.valid(s) {
				counts[val.kind]++
				break
			}
		}
		if lettersOnly(s) {
			words++
		}
		if cl == classText {
			v.prose.add(s)
		}
		if postcodeShape(s) {
			postcodes++
		}
	}
	for _, val := range valueValidators {
		v.fracs[val.kind] = float64(counts[val.kind]) / float64(n)
		v.checks[val.kind] = val.check
	}
	v.words, v.postcodes = float64(words)/float64(n), float64(postcodes)/float64(n)
	if cl == classText || cl == classDate {
		v.dob = birthDates(values, now())
	}
	if cl == classText {
		v.names = personNames(values)
	}
	v.distinct = len(seen)
	// Values alone judge only a column of varied values: one default
	// repeated ("nick", "n/a") is no sample of people.
	if n < minValues || v.distinct < 3 {
		return v
	}
	// The best-supported kind over its threshold, most specific first.
	for _, val := range valueValidators {
		need := minFrac
		switch val.kind {
		case KindPhone:
			need = minPhoneFrac
		case KindAddress:
			need = minStreetFrac
		}
		if cl == classInt && val.kind != KindCard {
			continue // a number is judged a phone or an id by its name only
		}
		if f := v.fracs[val.kind]; f >= need && f > v.frac {
			v.kind, v.frac, v.check = val.kind, f, val.check
		}
	}
	if v.kind != "" {
		return v
	}
	names := v.distinct*50 >= n // a handful of names repeated over many rows is a category
	switch {
	case !names:
	case v.names.full >= minNameFrac && v.names.full >= v.names.first:
		v.kind, v.frac, v.check = KindFullName, v.names.full, "the name lists (first and family names)"
	case v.names.first >= minNameFrac && v.names.first >= v.names.last:
		v.kind, v.frac, v.check = KindFirstName, v.names.first, "the first-name list"
	case v.names.last >= minNameFrac:
		v.kind, v.frac, v.check = KindLastName, v.names.last, "the family-name list"
	}
	switch {
	case v.kind != "":
	case v.dob.plausible >= minDOBFrac && n >= 20 && v.dob.days*2 >= n && v.dob.medianAge >= 18 && v.dob.medianAge <= 90 && v.dob.spread >= 15:
		v.kind, v.frac, v.check = KindBirthDate, v.dob.plausible, "the date of birth check (ages 0–120, adult median, decades apart)"
	case v.prose.judged():
		v.kind, v.frac, v.check = KindFreeText, v.prose.frac(), "the email, phone, card and IBAN checks inside prose"
	}
	return v
}
