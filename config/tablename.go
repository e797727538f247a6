package config

import (
	"errors"
	"path"
	"strings"
)

// SplitTableName splits a table entry's name such as public.customer,
// "Sales"."Order.Lines" or public.* into its schema and table parts, at the
// one dot outside double quotes.
//
// As psql and pg_dump read names, characters outside quotes are folded to
// lower case, quoted ones are kept as they are, and "" inside quotes is one
// quote. Outside quotes, * ? and [...] are glob characters and make the name
// a pattern; in a pattern, glob characters that came from quoted parts are
// escaped with a backslash, so that path.Match(schema, catalogSchema) and
// path.Match(table, catalogTable) select the right tables.
func SplitTableName(name string) (schema, table string, pattern bool, err error) {
	type part struct {
		plain   strings.Builder // for exact comparison
		escaped strings.Builder // for path.Match
	}
	var parts [2]part
	n := 0 // index of the part being read
	quoted := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		p := &parts[n]
		if quoted {
			if c == '"' {
				if i+1 < len(name) && name[i+1] == '"' {
					i++
				} else {
					quoted = false
					continue
				}
			}
			p.plain.WriteByte(c)
			if strings.IndexByte(`*?[]\`, c) >= 0 {
				p.escaped.WriteByte('\\')
			}
			p.escaped.WriteByte(c)
			continue
		}
		switch {
		case c == '"':
			quoted = true
			continue
		case c == '.':
			if n == 1 {
				return "", "", false, errors.New("table name has more than one dot: write schema.table, with double quotes around a name that holds a dot")
			}
			n = 1
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return "", "", false, errors.New("table name has a space outside double quotes")
		case c == '*' || c == '?' || c == '[':
			pattern = true
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		p.plain.WriteByte(c)
		p.escaped.WriteByte(c)
	}
	switch {
	case quoted:
		return "", "", false, errors.New("table name has an unterminated double quote")
	case n == 0:
		return "", "", false, errors.New("table name must be schema-qualified, e.g. public.customer")
	case parts[0].plain.Len() == 0 || parts[1].plain.Len() == 0:
		return "", "", false, errors.New("table name has an empty schema or table part: write schema.table, e.g. public.customer")
	}
	if !pattern {
		return parts[0].plain.String(), parts[1].plain.String(), false, nil
	}
	schema, table = parts[0].escaped.String(), parts[1].escaped.String()
	for _, s := range []string{schema, table} {
		if _, err := path.Match(s, ""); err != nil {
			return "", "", false, errors.New("table name is not a valid pattern: use * and ? and [...] classes, closing every [")
		}
	}
	return schema, table, true, nil
}
