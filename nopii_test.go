package nopii_test

import (
	"testing"

	"github.com/nopii/nopii"
)

func TestColumnLimits(t *testing.T) {
	builtin := func(name string) *nopii.Type { return &nopii.Type{Schema: "pg_catalog", Name: name} }
	domain := func(base *nopii.Type, mod int32) *nopii.Type {
		return &nopii.Type{Schema: "public", Name: "d", Kind: nopii.TypeDomain, Base: base, BaseTypmod: mod}
	}
	array := func(elem *nopii.Type) *nopii.Type {
		return &nopii.Type{Schema: elem.Schema, Name: "_" + elem.Name, Kind: nopii.TypeArray, Elem: elem}
	}
	numeric := func(p, s int32) int32 { return (p<<16 | (s & 0x7ff)) + 4 }
	tests := []struct {
		name     string
		col      nopii.Column
		chars    int
		numScale int
	}{
		{"varchar(20)", nopii.Column{Type: builtin("varchar"), Typmod: 24}, 20, -1},
		{"char(11)", nopii.Column{Type: builtin("bpchar"), Typmod: 15}, 11, -1},
		{"text", nopii.Column{Type: builtin("text"), Typmod: -1}, 0, -1},
		{"varchar(20)[]", nopii.Column{Type: array(builtin("varchar")), Typmod: 24}, 20, -1},
		{"domain over varchar(30)", nopii.Column{Type: domain(builtin("varchar"), 34), Typmod: -1}, 30, -1},
		{"array of a domain over varchar(30)", nopii.Column{Type: array(domain(builtin("varchar"), 34)), Typmod: -1}, 30, -1},
		{"numeric(10,2)", nopii.Column{Type: builtin("numeric"), Typmod: numeric(10, 2)}, 0, 2},
		{"numeric(5,-3)", nopii.Column{Type: builtin("numeric"), Typmod: numeric(5, -3)}, 0, -3},
		{"numeric", nopii.Column{Type: builtin("numeric"), Typmod: -1}, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.col.MaxChars(); got != tt.chars {
				t.Errorf("MaxChars = %d, want %d", got, tt.chars)
			}
			if got := tt.col.NumericScale(); got != tt.numScale {
				t.Errorf("NumericScale = %d, want %d", got, tt.numScale)
			}
		})
	}
}
