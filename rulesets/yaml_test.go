package rulesets_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nopii/nopii/rulesets"
)

// TestFlowYAMLReadsBack: the rendered rule reads back as YAML to the same
// rule.
func TestFlowYAMLReadsBack(t *testing.T) {
	for _, tc := range []struct {
		spec map[string]any
		want string
	}{
		{map[string]any{"rule": "mask", "keep_last": 4}, "{ rule: mask, keep_last: 4 }"},
		{map[string]any{"rule": "replace", "value": "yes"}, `{ rule: replace, value: "yes" }`},
		{map[string]any{"rule": "json", "paths": map[string]any{"$.contact.email": map[string]any{"rule": "redact_email"}}},
			`{ rule: json, paths: { "$.contact.email": { rule: redact_email } } }`},
	} {
		if got := rulesets.FlowYAML(tc.spec); got != tc.want {
			t.Errorf("FlowYAML = %s, want %s", got, tc.want)
		}
		var back map[string]any
		if err := yaml.Unmarshal([]byte(tc.want), &back); err != nil {
			t.Errorf("%s does not read back: %v", tc.want, err)
		}
		a, _ := json.Marshal(back)
		b, _ := json.Marshal(tc.spec)
		if !bytes.Equal(a, b) {
			t.Errorf("%s reads back as %s, want %s", tc.want, a, b)
		}
	}
}
