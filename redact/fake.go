package redact

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/brianvoe/gofakeit/v7"
)

// Faker produces realistic fake values of one kind (gofakeit's catalog),
// seeded per value from a digest: the same digest gives the same fake. It
// owns one gofakeit.Faker over a reseeded Source, so it allocates nothing
// per value beyond what gofakeit itself does for the kind. It is not safe
// for concurrent use.
type Faker struct {
	kind fakeKind
	src  Source
	gf   *gofakeit.Faker
}

type fakeKind struct {
	name string
	text func(f *Faker, dst []byte) []byte
}

// The fake kinds. Kinds whose values are list lookups append gofakeit's
// strings directly (no allocation); the others take gofakeit's string.
var fakeKinds = []fakeKind{
	{"first_name", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.FirstName()...) }},
	{"last_name", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.LastName()...) }},
	{"middle_name", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.MiddleName()...) }},
	{"full_name", func(f *Faker, dst []byte) []byte {
		dst = append(dst, f.gf.FirstName()...)
		dst = append(dst, ' ')
		return append(dst, f.gf.LastName()...)
	}},
	{"email", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.Email()...) }},
	{"username", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.Username()...) }},
	{"phone", func(f *Faker, dst []byte) []byte { return appendDigits(dst, &f.src, 10, true) }},
	{"phone_formatted", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.PhoneFormatted()...) }},
	{"street", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.Street()...) }},
	{"street_name", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.StreetName()...) }},
	{"city", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.City()...) }},
	{"state", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.State()...) }},
	{"zip", func(f *Faker, dst []byte) []byte { return appendDigits(dst, &f.src, 5, false) }},
	{"country", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.Country()...) }},
	{"country_code", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.CountryAbr()...) }},
	{"company", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.Company()...) }},
	{"job_title", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.JobTitle()...) }},
	{"ssn", func(f *Faker, dst []byte) []byte { return appendSSN(dst, &f.src) }},
	{"credit_card", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.CreditCardNumber(nil)...) }},
	{"iban", func(f *Faker, dst []byte) []byte { return appendIBAN(dst, &f.src) }},
	{"ipv4", func(f *Faker, dst []byte) []byte { return f.appendIPText(dst, 4) }},
	{"ipv6", func(f *Faker, dst []byte) []byte { return f.appendIPText(dst, 16) }},
	{"mac_address", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.MacAddress()...) }},
	{"url", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.URL()...) }},
	{"domain", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.DomainName()...) }},
	{"date_of_birth", func(f *Faker, dst []byte) []byte {
		return DateTime(f.birthDate()).AppendFormat(dst, time.DateOnly)
	}},
	{"uuid", func(f *Faker, dst []byte) []byte {
		var u [UUIDLen]byte
		return AppendUUIDText(dst, f.appendUUID(u[:0]))
	}},
	{"sentence", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.Sentence()...) }},
	{"word", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.Word()...) }},
	{"gender", func(f *Faker, dst []byte) []byte { return append(dst, f.gf.Gender()...) }},
}

// FakeKinds returns the names of the fake kinds, sorted.
func FakeKinds() []string {
	names := make([]string, len(fakeKinds))
	for i, k := range fakeKinds {
		names[i] = k.name
	}
	slices.Sort(names)
	return names
}

// NewFaker returns a Faker for kind, one of FakeKinds.
func NewFaker(kind string) (*Faker, error) {
	i := slices.IndexFunc(fakeKinds, func(k fakeKind) bool { return k.name == kind })
	if i < 0 {
		return nil, fmt.Errorf("unknown fake kind %q (valid: %s)", kind, strings.Join(FakeKinds(), ", "))
	}
	f := &Faker{kind: fakeKinds[i]}
	f.gf = gofakeit.NewFaker(&f.src, false)
	return f, nil
}

// Kind returns the Faker's kind.
func (f *Faker) Kind() string { return f.kind.name }

// AppendText appends the fake for d as text.
func (f *Faker) AppendText(dst []byte, d *Digest) []byte {
	f.src.Seed(d)
	return f.kind.text(f, dst)
}

// BirthDate returns a fake date of birth for d as a date wire value (days
// since 2000-01-01), between 1935 and 2006 so that the person is an adult
// of working or retirement age whatever the year of the run.
func (f *Faker) BirthDate(d *Digest) int64 {
	f.src.Seed(d)
	return f.birthDate()
}

const (
	birthFirst = -23741 // 1935-01-01
	birthLast  = 2556   // 2006-12-31
)

func (f *Faker) birthDate() int64 {
	return birthFirst + int64(f.src.IntN(birthLast-birthFirst+1))
}

// AppendUUID appends a fake (version 4) uuid for d in binary form.
func (f *Faker) AppendUUID(dst []byte, d *Digest) []byte {
	f.src.Seed(d)
	return f.appendUUID(dst)
}

func (f *Faker) appendUUID(dst []byte) []byte {
	n := len(dst)
	for range 2 {
		v := f.src.Uint64()
		for j := 0; j < 8; j++ {
			dst = append(dst, byte(v>>(56-8*j)))
		}
	}
	dst[n+6] = dst[n+6]&0x0f | 0x40
	dst[n+8] = dst[n+8]&0x3f | 0x80
	return dst
}

// AppendIP appends a fake address for d of size 4 (IPv4) or 16 (IPv6)
// bytes, avoiding unspecified, loopback and multicast addresses.
func (f *Faker) AppendIP(dst []byte, d *Digest, size int) []byte {
	f.src.Seed(d)
	return f.appendIP(dst, size)
}

func (f *Faker) appendIP(dst []byte, size int) []byte {
	n := len(dst)
	for {
		dst = dst[:n]
		for len(dst)-n < size {
			v := f.src.Uint64()
			for j := 0; j < 8 && len(dst)-n < size; j++ {
				dst = append(dst, byte(v>>(56-8*j)))
			}
		}
		if size == 16 {
			dst[n] = 0x20 | dst[n]&0x1f // 2000::/3, the global unicast block
		}
		if a, _ := netip.AddrFromSlice(dst[n:]); a.IsGlobalUnicast() {
			return dst
		}
	}
}

func (f *Faker) appendIPText(dst []byte, size int) []byte {
	var b [16]byte
	a, _ := netip.AddrFromSlice(f.appendIP(b[:0], size))
	return a.AppendTo(dst)
}

func appendDigits(dst []byte, src *Source, n int, nonZeroFirst bool) []byte {
	for i := range n {
		if i == 0 && nonZeroFirst {
			dst = append(dst, byte('1'+src.IntN(9)))
			continue
		}
		dst = append(dst, byte('0'+src.IntN(10)))
	}
	return dst
}

// appendSSN appends a US social security number of the valid shape
// AAA-GG-SSSS: area not 000, 666 or 9xx, group and serial not zero.
func appendSSN(dst []byte, src *Source) []byte {
	area := 1 + src.IntN(899)
	if area == 666 {
		area = 665
	}
	dst = appendPadded(dst, area, 3)
	dst = append(dst, '-')
	dst = appendPadded(dst, 1+src.IntN(99), 2)
	dst = append(dst, '-')
	return appendPadded(dst, 1+src.IntN(9999), 4)
}

func appendPadded(dst []byte, v, width int) []byte {
	var b [20]byte
	s := strconv.AppendInt(b[:0], int64(v), 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// ibanFormats are BBAN shapes with a valid ISO 13616 check: 'a' a capital
// letter, '9' a digit.
var ibanFormats = []struct{ country, bban string }{
	{"DE", "999999999999999999"},
	{"AT", "9999999999999999"},
	{"GB", "aaaa99999999999999"},
	{"FR", "99999999999999999999999"},
	{"NL", "aaaa9999999999"},
}

// appendIBAN appends an IBAN with correct mod-97 check digits.
func appendIBAN(dst []byte, src *Source) []byte {
	f := ibanFormats[src.IntN(len(ibanFormats))]
	start := len(dst)
	dst = append(dst, f.country...)
	dst = append(dst, '0', '0')
	for i := 0; i < len(f.bban); i++ {
		if f.bban[i] == 'a' {
			dst = append(dst, byte('A'+src.IntN(26)))
		} else {
			dst = append(dst, byte('0'+src.IntN(10)))
		}
	}
	// Check digits: the BBAN, then country and "00", letters as 10..35, mod 97.
	r := 0
	add := func(c byte) {
		if c >= 'A' && c <= 'Z' {
			r = (r*100 + int(c-'A'+10)) % 97
		} else {
			r = (r*10 + int(c-'0')) % 97
		}
	}
	for _, c := range dst[start+4:] {
		add(c)
	}
	for _, c := range dst[start : start+4] {
		add(c)
	}
	check := 98 - r
	dst[start+2], dst[start+3] = byte('0'+check/10), byte('0'+check%10)
	return dst
}
