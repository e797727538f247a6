package nopii_test

import (
	"strings"
	"testing"

	"github.com/nopii/nopii"
)

func TestNewSubset(t *testing.T) {
	name := func(n string) nopii.TableName { return nopii.TableName{Schema: "public", Name: n} }
	ref := func(from, col, to string) nopii.Reference {
		return nopii.Reference{From: name(from), Columns: []string{col}, To: name(to), ToColumns: []string{"id"}}
	}
	refs := []nopii.Reference{
		ref("orders", "user_id", "users"), ref("item", "order_id", "orders"), ref("item", "product_id", "product"),
		ref("product", "vendor_id", "vendor"), ref("review", "product_id", "product"), ref("users", "region_id", "region"),
		ref("staff", "manager_id", "staff"), ref("orders", "staff_id", "staff"), ref("log", "x_id", "outside"),
	}
	tests := []struct {
		name     string
		children bool
		want     string // reached tables, in order: P marks those bringing children
	}{
		{"with children", true, "users(P) orders(P) item(P) product vendor region staff"},
		{"without children", false, "users region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cands []*nopii.SubsetTable
			for _, n := range []string{"users", "orders", "item", "product", "vendor", "review", "region", "staff", "log"} {
				st := &nopii.SubsetTable{Table: &nopii.Table{Name: name(n)}}
				if n == "users" {
					st.Root = &nopii.SubsetRoot{Percent: 10, WithChildren: tt.children}
				}
				cands = append(cands, st)
			}
			s := nopii.NewSubset(cands, refs)
			var got []string
			for _, st := range s.Tables {
				g := st.Table.Name.Name
				if st.Propagates {
					g += "(P)"
				}
				got = append(got, g)
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("reached %v, want %s", got, tt.want)
			}
			if s.Table(name("review")) != nil {
				t.Errorf("review (a child of a parent) is reached")
			}
		})
	}
	if nopii.NewSubset([]*nopii.SubsetTable{{Table: &nopii.Table{Name: name("users")}}}, refs) != nil {
		t.Errorf("a subset without roots")
	}
}
