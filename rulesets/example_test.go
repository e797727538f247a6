package rulesets_test

import (
	"fmt"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/rulesets"
)

func ExampleCompile() {
	text := &nopii.Type{OID: 25, Schema: "pg_catalog", Name: "text"}
	col := nopii.Column{Name: "card", Type: text, Typmod: -1, TypeSQL: "text"}
	spec := rulesets.Spec{Rule: "mask", Params: map[string]any{"keep_last": 4}}

	f, err := rulesets.Compile(nopii.TableName{Schema: "public", Name: "payment"}, col, spec, nil)
	if err != nil {
		panic(err)
	}
	// text travels as its UTF-8 bytes.
	out, null, err := f(nil, []byte("4111 1111 1111 1234"))
	fmt.Println(string(out), null, err)

	// A rule that cannot fit the column fails at compile time.
	age := nopii.Column{Name: "age", Type: &nopii.Type{OID: 23, Schema: "pg_catalog", Name: "int4"}, Typmod: -1, TypeSQL: "integer"}
	_, err = rulesets.Compile(nopii.TableName{Schema: "public", Name: "customer"}, age, rulesets.Spec{Rule: "redact_email"}, []byte("key"))
	fmt.Println(err)
	// Output:
	// ***************1234 false <nil>
	// public.customer.age: rule redact_email: needs a text column, got integer
}

func ExampleCheck() {
	err := rulesets.Check("fake", map[string]any{"kind": "pokemon_name"})
	if pe, ok := err.(interface{ ParamName() string }); ok {
		fmt.Println("bad param:", pe.ParamName())
	}
	// Output:
	// bad param: kind
}
