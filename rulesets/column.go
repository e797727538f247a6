package rulesets

import (
	"fmt"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/redact"
)

// class groups PostgreSQL types by binary format, which is what rules care
// about.
type class uint8

const (
	cOther class = iota
	cText        // text, varchar, bpchar, name, citext
	cEnum
	cInt2
	cInt4
	cInt8
	cFloat4
	cFloat8
	cNumeric
	cBool
	cDate
	cTimestamp
	cTimestamptz
	cUUID
	cJSON
	cJSONB
	cBytea
	cInet
	cCidr
)

// target is what a rule compiles against: the column's scalar type (the
// element type for arrays), after domains, with the limits its values must
// respect.
type target struct {
	typ      *nopii.Type // scalar type, domains stripped
	class    class
	array    bool
	elemOID  uint32 // arrays: the element type OID
	bpchar   bool
	maxChars int // varchar(n), char(n); 0 = none
	maxBytes int // name: 63
	notNull  bool
	numPrec  int // numeric(p, s): p, 0 when unconstrained
	numScale int // numeric(p, s): s (may be negative)
	label    string
}

// nameMaxBytes is NAMEDATALEN-1: the longest value a name column holds.
const nameMaxBytes = 63

func describe(col nopii.Column) (target, error) {
	var c target
	t, mod := col.Type, col.Typmod
	if t == nil {
		return c, fmt.Errorf("%w: column has no type", nopii.ErrUnsupportedType)
	}
	c.label = col.TypeSQL
	if c.label == "" {
		c.label = t.Name
	}
	c.notNull = col.NotNull
	t, mod, c.notNull = stripDomains(t, mod, c.notNull)
	if t.Kind == nopii.TypeArray {
		if t.Elem == nil {
			return c, fmt.Errorf("%w: array type %s without element type", nopii.ErrUnsupportedType, t.Name)
		}
		c.array = true
		c.elemOID = t.Elem.OID
		t, mod, _ = stripDomains(t.Elem, mod, false)
	}
	c.typ = t
	c.class = classify(t)
	switch t.Name {
	case "varchar", "bpchar":
		if c.class == cText {
			c.maxChars = col.MaxChars()
		}
		c.bpchar = t.Name == "bpchar"
	case "name":
		c.maxBytes = nameMaxBytes
	case "numeric":
		if mod >= 4 {
			c.numPrec = int((mod - 4) >> 16 & 0xffff)
			// PostgreSQL 15+ stores the scale as an 11-bit signed number.
			c.numScale = int(((mod-4)&0x7ff)^1024) - 1024
		}
	}
	return c, nil
}

// stripDomains looks through domains to their base type, taking the first
// typmod given and NOT NULL from any of them.
func stripDomains(t *nopii.Type, mod int32, notNull bool) (*nopii.Type, int32, bool) {
	for t.Kind == nopii.TypeDomain && t.Base != nil {
		if mod < 0 {
			mod = t.BaseTypmod
		}
		notNull = notNull || t.NotNull
		t = t.Base
	}
	return t, mod, notNull
}

func classify(t *nopii.Type) class {
	if t.Kind == nopii.TypeEnum {
		return cEnum
	}
	if t.Kind != nopii.TypeBase {
		return cOther
	}
	if t.Name == "citext" {
		return cText
	}
	if t.Schema != "pg_catalog" && t.Schema != "" {
		return cOther
	}
	switch t.Name {
	case "text", "varchar", "bpchar", "name":
		return cText
	case "int2":
		return cInt2
	case "int4":
		return cInt4
	case "int8":
		return cInt8
	case "float4":
		return cFloat4
	case "float8":
		return cFloat8
	case "numeric":
		return cNumeric
	case "bool":
		return cBool
	case "date":
		return cDate
	case "timestamp":
		return cTimestamp
	case "timestamptz":
		return cTimestamptz
	case "uuid":
		return cUUID
	case "json":
		return cJSON
	case "jsonb":
		return cJSONB
	case "bytea":
		return cBytea
	case "inet":
		return cInet
	case "cidr":
		return cCidr
	}
	return cOther
}

func (c class) intSize() int {
	switch c {
	case cInt2:
		return 2
	case cInt4:
		return 4
	case cInt8:
		return 8
	}
	return 0
}

// canon returns the canonical seed form of the target's values.
func (c *target) canon() redact.Canon {
	switch c.class {
	case cText, cEnum:
		if c.bpchar {
			return redact.CanonBpchar
		}
		return redact.CanonText
	case cInt2, cInt4, cInt8:
		return redact.CanonInt(c.class.intSize())
	case cUUID:
		return redact.CanonUUID
	case cDate:
		return redact.CanonDate
	case cTimestamp:
		return redact.CanonTimestamp
	case cTimestamptz:
		return redact.CanonTimestamptz
	}
	return redact.CanonRaw(c.typ.Name)
}

// what describes the column for errors: "integer", "character varying(5)".
func (c *target) what() string { return c.label }
