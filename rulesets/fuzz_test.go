package rulesets_test

import (
	"bytes"
	"testing"

	"github.com/nopii/nopii/redact"
	"github.com/nopii/nopii/rulesets"
)

// fuzzRule compiles rule (with each of its param sets) for every column
// type it fits and feeds random bytes to all of them: invalid wire input
// must give an error, never a panic, and errors must not quote the input.
func fuzzRule(f *testing.F, rule string) {
	type compiled struct {
		name string
		fn   redact.Func
	}
	var funcs []compiled
	for _, cc := range colCases() {
		for _, rc := range ruleCases(cc.value) {
			if rc.spec.Rule != rule {
				continue
			}
			fn, err := rulesets.Compile(table, cc.col, rc.spec, testKey)
			if err != nil || fn == nil {
				continue
			}
			funcs = append(funcs, compiled{cc.name + "/" + rc.id, fn})
			for _, in := range cc.inputs {
				if in != "NULL" {
					f.Add(encodeText(f, wireOID(cc.col.Type), in))
				}
			}
		}
	}
	if len(funcs) == 0 {
		f.Fatalf("no column fits rule %s", rule)
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, c := range funcs {
			out, null, err := c.fn([]byte("dst"), in)
			if !bytes.HasPrefix(out, []byte("dst")) {
				t.Fatalf("%s: dst lost", c.name)
			}
			if err != nil {
				if null || len(out) != 3 {
					t.Fatalf("%s: error with output", c.name)
				}
				if len(in) >= 4 && bytes.Contains([]byte(err.Error()), in) {
					t.Fatalf("%s: error %q quotes the input", c.name, err)
				}
			}
		}
	})
}

func FuzzRedactEmail(f *testing.F)  { fuzzRule(f, "redact_email") }
func FuzzFake(f *testing.F)         { fuzzRule(f, "fake") }
func FuzzHash(f *testing.F)         { fuzzRule(f, "hash") }
func FuzzMask(f *testing.F)         { fuzzRule(f, "mask") }
func FuzzReplace(f *testing.F)      { fuzzRule(f, "replace") }
func FuzzDestroy(f *testing.F)      { fuzzRule(f, "destroy") }
func FuzzRandomString(f *testing.F) { fuzzRule(f, "random_string") }
func FuzzShiftDate(f *testing.F)    { fuzzRule(f, "shift_date") }
func FuzzNoise(f *testing.F)        { fuzzRule(f, "noise") }
func FuzzJSON(f *testing.F)         { fuzzRule(f, "json") }
