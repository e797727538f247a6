package config

import (
	"math"
	"strings"

	"gopkg.in/yaml.v3"
)

// subset decodes a table's subset: {where: …} and/or {percent: …}, with
// with_children.
func (d *decoder) subset(v *yaml.Node, path string) *Subset {
	v = d.deref(v)
	const what = "a mapping such as {where: \"customer_id % 10 = 0\"} or {percent: 10}"
	if !d.mapping(v, path, what) {
		return nil
	}
	s := &Subset{Pos: nodePos(d.file, v), WithChildren: true}
	var whereNode, percentNode *yaml.Node
	keys := []key{
		{"where", func(n *yaml.Node, p string) { whereNode, s.Where = n, strings.TrimSpace(d.str(n, p)) }},
		{"percent", func(n *yaml.Node, p string) { percentNode, s.Percent = n, d.percent(n, p) }},
		{"with_children", func(n *yaml.Node, p string) { s.WithChildren = d.boolean(n, p) }},
	}
	ks := d.fields(v, path, keys)
	d.reportUnknown(ks, path, "in subset", keyNames(keys))
	if whereNode == nil && percentNode == nil {
		d.errorf(v, path, "a subset needs where (a SQL condition on the table's columns) or percent (a share of its rows), e.g. {percent: 10}")
	}
	if whereNode != nil && s.Where == "" {
		d.errorf(whereNode, joinPath(path, "where"), "must not be empty: a SQL condition on the table's columns, e.g. \"country = 'DE'\"")
	}
	if whereNode != nil && strings.Contains(s.Where, ";") {
		d.errorf(whereNode, joinPath(path, "where"), "must be one SQL condition, without ';'")
	}
	return s
}

// percent decodes a share in (0, 100].
func (d *decoder) percent(v *yaml.Node, path string) float64 {
	v = d.deref(v)
	var f float64
	if v.Kind != yaml.ScalarNode || (v.ShortTag() != intTag && v.ShortTag() != floatTag) || v.Decode(&f) != nil {
		d.errorf(v, path, "expected a number of percent in (0, 100], got %s", describe(v))
		return 0
	}
	if math.IsNaN(f) || f <= 0 || f > 100 {
		d.errorf(v, path, "must be more than 0 and at most 100 (a share of the table's rows, in percent)")
		return 0
	}
	return f
}

// references decodes a table's virtual foreign keys.
func (d *decoder) references(v *yaml.Node, path string) []Reference {
	items, ok := d.list(v, path, "a list of references such as {columns: [referrer_id], table: public.customer, to: [customer_id]}")
	if !ok {
		return nil
	}
	var out []Reference
	for i, it := range items {
		p := indexPath(path, i)
		it = d.deref(it)
		if !d.mapping(it, p, "a reference such as {columns: [referrer_id], table: public.customer, to: [customer_id]}") {
			continue
		}
		r := Reference{Pos: nodePos(d.file, it)}
		var tableNode, toNode *yaml.Node
		keys := []key{
			{"columns", func(n *yaml.Node, p string) { r.Columns = d.strList(n, p, "a column name or a list of column names") }},
			{"table", func(n *yaml.Node, p string) { tableNode, r.Table = n, d.str(n, p) }},
			{"to", func(n *yaml.Node, p string) {
				toNode, r.To = n, d.strList(n, p, "a column name or a list of column names")
			}},
		}
		ks := d.fields(it, p, keys)
		d.reportUnknown(ks, p, "in a reference", keyNames(keys))
		if len(r.Columns) == 0 && !ks.has("columns") {
			d.errorf(it, joinPath(p, "columns"), "required: this table's columns that hold the reference, e.g. columns: [referrer_id]")
		}
		switch {
		case tableNode == nil:
			d.errorf(it, joinPath(p, "table"), "required: the schema-qualified table referenced, e.g. table: public.customer")
		case r.Table == "":
			d.errorf(tableNode, joinPath(p, "table"), "must not be empty: the schema-qualified table referenced, e.g. table: public.customer")
		default:
			var pattern bool
			var err error
			r.Schema, r.Name, pattern, err = SplitTableName(r.Table)
			switch {
			case err != nil:
				d.errorf(tableNode, joinPath(p, "table"), "%v", err)
			case pattern:
				d.errorf(tableNode, joinPath(p, "table"), "a reference names one table, not a pattern")
			}
		}
		if toNode != nil && len(r.To) > 0 && len(r.Columns) > 0 && len(r.To) != len(r.Columns) {
			d.errorf(toNode, joinPath(p, "to"), "names %d column(s) for %d in columns: a reference pairs them one to one", len(r.To), len(r.Columns))
		}
		out = append(out, r)
	}
	return out
}
