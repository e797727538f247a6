package redact_test

import (
	"fmt"

	"github.com/nopii/nopii/redact"
)

func ExampleJSONRewriter() {
	path, _ := redact.ParseJSONPath("$.items[*].email")
	mask := func(dst []byte, _ redact.JSONKind, text []byte) ([]byte, error) {
		return redact.AppendJSONString(dst, redact.AppendMask(nil, text, 1, 0, '*')), nil
	}
	w := redact.NewJSONRewriter([]redact.JSONAction{{Path: path, Scalar: mask}})
	out, err := w.Rewrite(nil, []byte(`{"items": [{"email": "ann@x.org"}, {"email": "bo@y.org", "qty": 2}]}`))
	fmt.Println(string(out), err)
	// Output:
	// {"items": [{"email": "a********"}, {"email": "b*******", "qty": 2}]} <nil>
}

func ExampleKeyed() {
	k := redact.NewKeyed([]byte("hmac_key from the workflow"))
	var d redact.Digest
	k.Sum(&d, []byte("alice@example.org"))
	// The same key and value give the same address in every table and run.
	fmt.Println(string(redact.AppendEmail(nil, &d, 16, "example.com")))
	// Output:
	// u04b9119f13de7cb9@example.com
}
