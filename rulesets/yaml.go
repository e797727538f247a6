package rulesets

import (
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// FlowYAML renders a column rule as one YAML flow mapping that a workflow
// file (package config) reads back as the same rule: rule first, the other keys sorted,
// nested mappings alike — { rule: mask, keep_last: 4 }, { rule: json,
// paths: { "$.contact.email": { rule: redact_email } } }. Values are what
// encoding/json decodes (json.Number too).
func FlowYAML(spec map[string]any) string {
	keys := make([]string, 0, len(spec))
	for k := range spec {
		if k != "rule" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if _, ok := spec["rule"]; ok {
		keys = append([]string{"rule"}, keys...)
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = yamlScalar(k) + ": " + flowValue(spec[k])
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

func flowValue(v any) string {
	switch v := v.(type) {
	case map[string]any:
		return FlowYAML(v)
	case string:
		return yamlScalar(v)
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return "null"
	}
	b, _ := json.Marshal(v) // numbers and lists: JSON is YAML flow
	return string(b)
}

var plainYAML = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-/]*$`)

// yamlScalar writes s plain when YAML reads it back as the same string,
// else double-quoted (JSON strings are valid YAML).
func yamlScalar(s string) string {
	switch strings.ToLower(s) {
	case "true", "false", "null", "yes", "no", "on", "off", "y", "n", "~":
		return strconv.Quote(s)
	}
	if plainYAML.MatchString(s) {
		return s
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// ScalarYAML renders a string as a YAML scalar that reads back as itself.
func ScalarYAML(s string) string { return yamlScalar(s) }
