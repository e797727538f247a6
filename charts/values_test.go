package charts_test

import (
	"os"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestValuesCommented: every value in values.yaml (every key whose value is
// not a section of further keys) has a comment above it saying what it does.
func TestValuesCommented(t *testing.T) {
	data, err := os.ReadFile("nopii/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	var walk func(path string, m *yaml.Node)
	walk = func(path string, m *yaml.Node) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			p := path + k.Value
			if v.Kind == yaml.MappingNode && len(v.Content) > 0 && k.Value != "resources" && k.Value != "podSecurityContext" && k.Value != "securityContext" {
				walk(p+".", v)
				continue
			}
			n++
			if k.HeadComment == "" {
				t.Errorf("values.yaml:%d: %s has no comment", k.Line, p)
			}
		}
	}
	walk("", doc.Content[0])
	if n < 40 {
		t.Errorf("found %d values; the walk missed some", n)
	}
}
