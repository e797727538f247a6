package agent

import (
	"archive/zip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

// ExportManifest is manifest.json of an export: what each file holds.
type ExportManifest struct {
	RequestID   string       `json:"request_id"`
	Workflow    string       `json:"workflow"`
	GeneratedAt time.Time    `json:"generated_at"`
	Subjects    []string     `json:"subjects"` // keyed hashes of the requests, as in the audit
	Files       []ExportFile `json:"files"`
}

// ExportFile is one table's file in an export.
type ExportFile struct {
	File  string   `json:"file"`
	Input string   `json:"input"`
	Table string   `json:"table"`
	Rows  int64    `json:"rows"`
	Via   []string `json:"via"`
}

const exportReadme = `Your personal data
==================

This archive holds the rows of our databases that relate to you, as they
are stored (they are not redacted: they are your data). It answers a
request for access to your data or for its portability (GDPR articles 15
and 20).

- One JSON file per database table, under a folder per database: each file
  is an array of rows, each row an object of column names and values.
- manifest.json lists the files, the number of rows in each, and how the
  rows were found: by an identifier of yours (such as your e-mail address)
  or because they refer to such a row (an order refers to its customer).

Copies of this data made for engineering and analytics have your personal
data replaced by made-up or hashed values; they are not included.
`

// ExportSubject writes a zip of the requests' source rows to w: one JSON
// file per table (rows as row_to_json renders them), manifest.json and
// README.txt for the person.
func (r *Runner) ExportSubject(ctx context.Context, cfg *config.Config, wf *config.Workflow, reqs []SubjectRequest, w io.Writer, now time.Time) (*SubjectReport, error) {
	sr, err := r.openSubject(ctx, cfg, wf, reqs)
	if err != nil {
		return nil, err
	}
	defer sr.close()
	rep, err := sr.report(ctx, "export", false)
	if err != nil {
		return nil, err
	}
	rep.RequestID = newJobID()
	m := ExportManifest{RequestID: rep.RequestID, Workflow: wf.Name, GeneratedAt: now.UTC(), Subjects: sr.subjects, Files: []ExportFile{}}
	zw := zip.NewWriter(w)
	for _, si := range sr.inputs {
		via := map[nopii.TableName][]string{}
		for _, t := range si.tables {
			via[t.rows.Table] = t.rows.Via
		}
		var cur *ExportFile
		var fw io.Writer
		end := func() error {
			if cur == nil {
				return nil
			}
			_, err := io.WriteString(fw, "\n]\n")
			m.Files = append(m.Files, *cur)
			cur = nil
			return err
		}
		err := si.ss.SubjectJSON(ctx, si.all, func(t nopii.TableName, js []byte) error {
			sep := ",\n  "
			if cur == nil || cur.Table != t.String() {
				if err := end(); err != nil {
					return err
				}
				cur = &ExportFile{File: exportPath(si.in.Name, t), Input: si.in.Name, Table: t.String(), Via: via[t]}
				var err error
				if fw, err = zw.CreateHeader(&zip.FileHeader{Name: cur.File, Method: zip.Deflate, Modified: now}); err != nil {
					return err
				}
				sep = "[\n  "
			}
			cur.Rows++
			if _, err := io.WriteString(fw, sep); err != nil {
				return err
			}
			_, err := fw.Write(js)
			return err
		})
		if err == nil {
			err = end()
		}
		if err != nil {
			return nil, fmt.Errorf("export from input %s: %w", si.in.Name, err)
		}
	}
	for _, f := range []struct {
		name string
		v    any
	}{{"manifest.json", m}, {"README.txt", exportReadme}} {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: now})
		if err != nil {
			return nil, err
		}
		if s, ok := f.v.(string); ok {
			_, err = io.WriteString(fw, s)
		} else {
			enc := json.NewEncoder(fw)
			enc.SetIndent("", "  ")
			err = enc.Encode(f.v)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return rep.finish(nil)
}

// exportPath names a table's file: <input>/<schema>.<table>.json, with
// path separators in names replaced.
func exportPath(input string, t nopii.TableName) string {
	clean := strings.NewReplacer("/", "_", "\\", "_").Replace
	return clean(input) + "/" + clean(t.Schema) + "." + clean(t.Name) + ".json"
}
