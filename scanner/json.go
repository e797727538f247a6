package scanner

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/nopii/nopii"
)

// maxPathValues bounds the values kept per path of a json column's sample,
// maxPaths the paths judged (documents keyed by ids have a path per id).
const (
	maxPathValues = 1000
	maxPaths      = 500
)

var textColumnType = &nopii.Type{Schema: "pg_catalog", Name: "text"}

// judgeJSON walks sampled json documents and judges every path that holds
// scalars as a text column named by its last key: $.contact.email is judged
// like a column email with those values. Arrays are walked as [*].
func judgeJSON(docs []string) (Finding, bool) {
	vals := map[string][]string{}
	keys := map[string]string{}
	parsed := 0
	for _, d := range docs {
		var v any
		dec := json.NewDecoder(strings.NewReader(d))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			continue
		}
		parsed++
		walkJSON("$", "", v, func(path, key, val string) {
			if _, known := vals[path]; !known && len(vals) >= maxPaths {
				return
			}
			if len(vals[path]) < maxPathValues {
				vals[path] = append(vals[path], val)
				keys[path] = key
			}
		})
	}
	var paths []PathFinding
	for p, vs := range vals {
		f, ok := judgeColumn(nopii.Column{Name: keys[p], Type: textColumnType, Typmod: -1}, classText, vs)
		if ok {
			paths = append(paths, PathFinding{Path: p, Kind: f.Kind, Confidence: f.Confidence, Evidence: f.Evidence})
		}
	}
	if len(paths) == 0 {
		return Finding{}, false
	}
	sort.Slice(paths, func(i, j int) bool { return paths[i].Path < paths[j].Path })
	best := 0.0
	list := make([]string, len(paths))
	for i, p := range paths {
		best = max(best, p.Confidence)
		list[i] = p.Path + " (" + p.Kind + ")"
	}
	return Finding{Kind: KindJSON, Confidence: best, Paths: paths,
		Evidence: fmt.Sprintf("%d sampled documents: %s", parsed, strings.Join(list, ", "))}, true
}

// walkJSON calls leaf for every string or number with its path and the
// object key it sits under.
func walkJSON(path, key string, v any, leaf func(path, key, val string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			walkJSON(path+pathStep(k), k, e, leaf)
		}
	case []any:
		for _, e := range x {
			walkJSON(path+"[*]", key, e, leaf)
		}
	case string:
		leaf(path, key, x)
	case json.Number:
		leaf(path, key, x.String())
	}
}

// pathStep renders an object key as a path step: .name for identifiers,
// ['name'] otherwise.
func pathStep(k string) string {
	ident := k != ""
	for i, r := range k {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			ident = false
		}
	}
	if ident {
		return "." + k
	}
	return "['" + strings.ReplaceAll(k, "'", `\'`) + "']"
}
