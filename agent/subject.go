package agent

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

// Data-subject requests (SPEC §7): find, export and forget one person's
// rows in every input and feed of a workflow.

// DefaultMaxMatchingProportion is forget's safeguard: a request matching a
// larger share of any table is refused.
const DefaultMaxMatchingProportion = 0.01

// SubjectRequest is one data subject: rows matching any of its
// identifiers are the subject's.
type SubjectRequest struct {
	Matches []nopii.SubjectMatch
}

// subjectSource is the source side of subject requests (source/postgres).
type subjectSource interface {
	SubjectRows(ctx context.Context, qs []nopii.SubjectQuery) ([]nopii.SubjectRows, error)
	SubjectJSON(ctx context.Context, qs []nopii.SubjectQuery, row func(t nopii.TableName, js []byte) error) error
	DeleteSubject(ctx context.Context, qs []nopii.SubjectQuery, maxProportion float64) ([]nopii.SubjectRows, error)
}

// SubjectFeed is a feed that can find and forget rows by key (twin, s3,
// files).
type SubjectFeed interface {
	ForgottenLister
	// CountKeys returns how many of the table's current rows have one of
	// keys as source_primary_key.
	CountKeys(ctx context.Context, target nopii.TableName, keys []string) (int64, error)
	// Forget deletes the rows and records their keys in the suppression
	// list, atomically where the feed can; the keys deleted per table.
	Forget(ctx context.Context, req nopii.Forget) ([][]string, error)
	// RecordSubjectRequests appends audit records.
	RecordSubjectRequests(ctx context.Context, recs []nopii.SubjectAudit) error
}

// SubjectReport is what a subject request found or did.
type SubjectReport struct {
	RequestID string         `json:"request_id,omitempty"`
	Workflow  string         `json:"workflow"`
	Action    string         `json:"action"` // find, export, forget
	DryRun    bool           `json:"dry_run,omitempty"`
	Subjects  []string       `json:"subjects"` // keyed hashes, one per request
	Tables    []SubjectTable `json:"tables"`
	// Unfollowed are columns that look like references to a subject's
	// table and that nothing declares (no foreign key, no references:
	// entry): the request did not look there.
	Unfollowed []UnfollowedColumn `json:"unfollowed,omitempty"`
	Status     string             `json:"status"` // success, failed
	Error      string             `json:"error,omitempty"`
}

// SubjectTable is one source table's line of a SubjectReport.
type SubjectTable struct {
	Input         string            `json:"input"`
	Table         string            `json:"table"`            // in the source
	Target        string            `json:"target,omitempty"` // in the feeds; empty when the workflow does not copy the table
	Via           []string          `json:"via"`
	SourceRows    int64             `json:"source_rows"`
	TableRows     int64             `json:"table_rows"`
	Proportion    float64           `json:"proportion"`
	SourceDeleted int64             `json:"source_deleted,omitempty"`
	Feeds         []SubjectFeedRows `json:"feeds"`
}

// SubjectFeedRows is one feed's count of a table's subject rows.
type SubjectFeedRows struct {
	Feed    string `json:"feed"`
	Rows    int64  `json:"rows"`
	Deleted int64  `json:"deleted,omitempty"`
}

// subjectRun is a request matched in every input of a workflow; its
// sources and feeds stay open until close.
type subjectRun struct {
	wf       *config.Workflow
	key      []byte
	reqs     []SubjectRequest
	subjects []string // keyed hashes of the requests
	inputs   []*subjectInput
	feeds    []nopii.Feed
	names    []string // the feeds' names in reports and audit records
	closers  []func() error
}

type subjectInput struct {
	in     *config.Input
	ss     subjectSource
	all    []nopii.SubjectQuery   // every request's queries, OR'ed
	per    [][]nopii.SubjectQuery // per request; nil when the request has no identifying column here
	tables []*subjectTableRun
	// unfollowed are the columns that look like references to a seed
	// table but that no reference declares.
	unfollowed []UnfollowedColumn
}

type subjectTableRun struct {
	rows       nopii.SubjectRows // of all requests
	job        *job              // nil when the workflow does not copy the table
	feedKeys   []string          // rows.Keys as the feeds hold them
	perRequest []map[string]bool // feed keys per request
	perRows    []int64           // source rows per request
}

func (sr *subjectRun) close() {
	for i := len(sr.closers) - 1; i >= 0; i-- {
		sr.closers[i]()
	}
}

// identifying maps each identifying column of the workflow to the tables
// declaring it.
func identifying(wf *config.Workflow) map[string][]string {
	out := map[string][]string{}
	for _, in := range wf.Inputs {
		for _, t := range in.Tables {
			for _, c := range t.Identifies {
				out[c] = append(out[c], in.Name+":"+t.Schema+"."+t.Table)
			}
		}
	}
	return out
}

// checkRequests refuses a request on a column that no table of the
// workflow declares identifying.
func checkRequests(wf *config.Workflow, reqs []SubjectRequest) error {
	if len(reqs) == 0 {
		return errors.New("no request: give --match column=value or --requests FILE")
	}
	ids := identifying(wf)
	var cols []string
	for c := range ids {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	for _, r := range reqs {
		if len(r.Matches) == 0 {
			return errors.New("a request without column=value")
		}
		for _, m := range r.Matches {
			if _, ok := ids[m.Column]; ok {
				continue
			}
			if len(cols) == 0 {
				return fmt.Errorf("column %q is not declared identifying in workflow %s, which declares none: add identifies: [%s] to the tables that hold it", m.Column, wf.Name, m.Column)
			}
			return fmt.Errorf("column %q is not declared identifying in workflow %s; identifying columns: %s (add it to a table's identifies: list to match on it)", m.Column, wf.Name, strings.Join(cols, ", "))
		}
	}
	return nil
}

// subjectHash is the keyed hash of a request's identifiers that audit
// records carry instead of them: the same person asked for twice, in any
// order of identifiers, gets the same hash.
func subjectHash(key []byte, r SubjectRequest) string {
	parts := make([]string, len(r.Matches))
	for i, m := range r.Matches {
		parts[i] = m.Column + "=" + m.Value
	}
	sort.Strings(parts)
	parts = slices.Compact(parts)
	m := hmac.New(sha256.New, derivedKey(key, subjectLabel))
	m.Write([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(m.Sum(nil))
}

// openSubject checks the requests, opens the workflow's feeds and a
// snapshot of each input, and matches the requests in them.
func (r *Runner) openSubject(ctx context.Context, cfg *config.Config, wf *config.Workflow, reqs []SubjectRequest) (sr *subjectRun, err error) {
	if err := checkRequests(wf, reqs); err != nil {
		return nil, err
	}
	sr = &subjectRun{wf: wf, key: []byte(cfg.HMACKey.Reveal()), reqs: reqs}
	defer func() {
		if err != nil {
			sr.close()
		}
	}()
	if len(sr.key) == 0 {
		return nil, errors.New("subject requests need hmac_key: audit records and forgotten keys are keyed hashes")
	}
	for _, q := range reqs {
		sr.subjects = append(sr.subjects, subjectHash(sr.key, q))
	}
	kinds := map[string]int{}
	for _, f := range wf.Feeds {
		kinds[f.Type]++
	}
	feeds, err := r.openFeeds(ctx, wf)
	if err != nil {
		return nil, err
	}
	seen := map[string]int{}
	for i, f := range feeds {
		sr.closers = append(sr.closers, f.Close)
		sr.feeds = append(sr.feeds, f)
		name := f.Kind()
		if seen[wf.Feeds[i].Type]++; kinds[wf.Feeds[i].Type] > 1 {
			name = fmt.Sprintf("%s#%d", name, seen[wf.Feeds[i].Type])
		}
		sr.names = append(sr.names, name)
	}
	for i := range wf.Inputs {
		si, err := r.matchInput(ctx, sr, &wf.Inputs[i])
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", wf.Inputs[i].Name, err)
		}
		if si != nil {
			sr.inputs = append(sr.inputs, si)
		}
	}
	return sr, nil
}

func (r *Runner) matchInput(ctx context.Context, sr *subjectRun, in *config.Input) (*subjectInput, error) {
	seeds := map[string]bool{}
	for _, t := range in.Tables {
		for _, c := range t.Identifies {
			seeds[c] = true
		}
	}
	if len(seeds) == 0 {
		return nil, nil
	}
	src, err := r.OpenSource(ctx, in, 1)
	if err != nil {
		return nil, err
	}
	sr.closers = append(sr.closers, src.Close)
	ss, ok := src.(subjectSource)
	if !ok {
		return nil, errors.New("the source cannot serve subject requests")
	}
	jobs, err := resolve(ctx, src, in, sr.key, false)
	if err != nil {
		return nil, err
	}
	var described []*nopii.Table
	byName := map[nopii.TableName]*job{}
	byColumn := map[string][]nopii.SubjectSeed{}
	for _, j := range jobs {
		if j.entry != nil && len(j.entry.Identifies) > 0 && j.err != nil {
			return nil, fmt.Errorf("table %s declares identifying columns but cannot be read: %w", j.rel.Name, j.err)
		}
		if j.err != nil || j.table == nil {
			continue
		}
		described = append(described, j.table)
		byName[j.table.Name] = j
		if j.entry == nil {
			continue
		}
		for _, c := range j.entry.Identifies {
			if _, ok := j.table.Column(c); !ok {
				return nil, fmt.Errorf("%s:%d:%d: identifying column %q: %w in table %s (columns: %s)", j.entry.Pos.File, j.entry.Pos.Line, j.entry.Pos.Col,
					c, nopii.ErrNotFound, j.table.Name, columnNames(j.table))
			}
			byColumn[c] = append(byColumn[c], nopii.SubjectSeed{Table: j.table, Column: c})
		}
	}
	si := &subjectInput{in: in, ss: ss}
	var refs, virtual []nopii.Reference
	if len(jobs) > 0 {
		refs = jobs[0].refs
	}
	for _, r := range refs {
		if r.Virtual {
			virtual = append(virtual, r)
		}
	}
	var seedTables []*nopii.Table
	for _, j := range jobs {
		if j.table != nil && j.err == nil && j.entry != nil && len(j.entry.Identifies) > 0 {
			seedTables = append(seedTables, j.table)
		}
	}
	si.unfollowed = unfollowed(in.Name, seedTables, described, refs)
	for _, req := range sr.reqs {
		var qs []nopii.SubjectQuery
		for _, m := range req.Matches {
			if len(byColumn[m.Column]) > 0 {
				qs = append(qs, nopii.SubjectQuery{Seeds: byColumn[m.Column], Values: []string{m.Value}, Tables: described, References: virtual})
			}
		}
		si.per = append(si.per, qs)
		si.all = append(si.all, qs...)
	}
	if len(si.all) == 0 {
		return nil, nil
	}
	all, err := ss.SubjectRows(ctx, si.all)
	if err != nil {
		return nil, err
	}
	index := map[nopii.TableName]*subjectTableRun{}
	for _, rows := range all {
		t := &subjectTableRun{rows: rows, job: byName[rows.Table]}
		if t.job != nil {
			if t.feedKeys, err = feedKeys(t.job, sr.key, rows.Keys); err != nil {
				return nil, err
			}
		}
		index[rows.Table] = t
		si.tables = append(si.tables, t)
	}
	// Each request's own rows, for the audit records: with one request,
	// they are all the rows.
	for i, qs := range si.per {
		per := all
		if len(sr.reqs) > 1 {
			per = nil
			if len(qs) > 0 {
				if per, err = ss.SubjectRows(ctx, qs); err != nil {
					return nil, err
				}
			}
		}
		for _, t := range si.tables {
			t.perRequest = append(t.perRequest, map[string]bool{})
			t.perRows = append(t.perRows, 0)
		}
		for _, rows := range per {
			t := index[rows.Table]
			if t == nil {
				continue
			}
			t.perRows[i] = rows.Rows
			if t.job != nil {
				keys, err := feedKeys(t.job, sr.key, rows.Keys)
				if err != nil {
					return nil, err
				}
				for _, k := range keys {
					t.perRequest[i][k] = true
				}
			}
		}
	}
	return si, nil
}

// feedKeys computes source_primary_key as the copy does: the key text,
// hashed where a key column has a rule.
func feedKeys(j *job, key []byte, keys []string) ([]string, error) {
	c, err := compile(j, key)
	if err != nil {
		return nil, err
	}
	p := newRowPath(c, j.table, nil, nil)
	out := make([]string, len(keys))
	for i, k := range keys {
		v, err := p.feedKey([]byte(k))
		if err != nil {
			return nil, err
		}
		out[i] = string(v)
	}
	return out, nil
}

// report lists the matches, with each feed's count of the rows it holds
// when count is set.
func (sr *subjectRun) report(ctx context.Context, action string, count bool) (*SubjectReport, error) {
	rep := &SubjectReport{Workflow: sr.wf.Name, Action: action, Subjects: sr.subjects, Tables: []SubjectTable{}}
	for _, si := range sr.inputs {
		rep.Unfollowed = append(rep.Unfollowed, si.unfollowed...)
		for _, t := range si.tables {
			st := SubjectTable{Input: si.in.Name, Table: t.rows.Table.String(), Via: t.rows.Via, SourceRows: t.rows.Rows,
				TableRows: t.rows.TableRows, Proportion: t.rows.Proportion(), Feeds: []SubjectFeedRows{}}
			if t.job != nil {
				st.Target = t.job.target.Name.String()
				for i, f := range sr.feeds {
					fr := SubjectFeedRows{Feed: sr.names[i]}
					if count && len(t.feedKeys) > 0 {
						sf, ok := f.(SubjectFeed)
						if !ok {
							return nil, fmt.Errorf("the %s feed cannot serve subject requests", f.Kind())
						}
						n, err := sf.CountKeys(ctx, t.job.target.Name, t.feedKeys)
						if err != nil {
							return nil, fmt.Errorf("count %s rows in the %s feed: %w", t.rows.Table, sr.names[i], err)
						}
						fr.Rows = n
					}
					st.Feeds = append(st.Feeds, fr)
				}
			}
			rep.Tables = append(rep.Tables, st)
		}
	}
	return rep, nil
}

func (rep *SubjectReport) finish(err error) (*SubjectReport, error) {
	rep.Status = "success"
	if err != nil {
		rep.Status, rep.Error = "failed", err.Error()
	}
	return rep, err
}

// FindSubject lists the requests' rows per input, source table and feed.
func (r *Runner) FindSubject(ctx context.Context, cfg *config.Config, wf *config.Workflow, reqs []SubjectRequest) (*SubjectReport, error) {
	sr, err := r.openSubject(ctx, cfg, wf, reqs)
	if err != nil {
		return nil, err
	}
	defer sr.close()
	rep, err := sr.report(ctx, "find", true)
	if err != nil {
		return nil, err
	}
	return rep.finish(nil)
}

// ForgetOptions are forget's flags.
type ForgetOptions struct {
	MaxProportion  float64 // DefaultMaxMatchingProportion when 0
	DryRun         bool
	IncludeSources bool
	Now            func() time.Time // for tests; time.Now when nil
}

// ForgetSubject deletes the requests' rows from every feed of the
// workflow (and with IncludeSources from the sources) and keeps their keys
// out of later runs. Before anything is deleted anywhere, every table's
// matched share is checked against MaxProportion: one table over it fails
// the whole request. Each feed gets one atomic step where it can (one
// transaction in a twin); each target's outcome is an audit record per
// subject, in every feed.
func (r *Runner) ForgetSubject(ctx context.Context, cfg *config.Config, wf *config.Workflow, reqs []SubjectRequest, o ForgetOptions) (*SubjectReport, error) {
	if o.MaxProportion <= 0 {
		o.MaxProportion = DefaultMaxMatchingProportion
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	sr, err := r.openSubject(ctx, cfg, wf, reqs)
	if err != nil {
		return nil, err
	}
	defer sr.close()
	fr := &forgetRun{subjectRun: sr, opts: o}
	for i, f := range sr.feeds {
		sf, ok := f.(SubjectFeed)
		if !ok {
			return nil, fmt.Errorf("the %s feed cannot forget rows: nothing was deleted", sr.names[i])
		}
		fr.sfeeds = append(fr.sfeeds, sf)
	}
	if fr.rep, err = sr.report(ctx, "forget", o.DryRun); err != nil {
		return nil, err
	}
	fr.rep.DryRun = o.DryRun
	fr.refused = fr.checkProportion()
	if o.DryRun {
		return fr.rep.finish(fr.refused)
	}
	fr.rep.RequestID = newJobID()
	fr.at = o.Now().UTC()
	if fr.refused != nil {
		return fr.refuse(ctx)
	}
	fr.forgetInFeeds(ctx)
	if o.IncludeSources {
		fr.deleteInSources(ctx)
	}
	fr.record(ctx)
	return fr.rep.finish(errors.Join(fr.errs...))
}

// forgetRun is one forget request on its way: the matched subjects, the
// report it fills in, the audit records it writes to every feed at the end.
type forgetRun struct {
	*subjectRun
	opts    ForgetOptions
	sfeeds  []SubjectFeed
	rep     *SubjectReport
	at      time.Time
	refused error // the safeguard's refusal: nothing is deleted
	audits  []nopii.SubjectAudit
	errs    []error
}

// checkProportion is the safeguard: a request matching more than
// MaxProportion of any table is refused as a whole.
func (fr *forgetRun) checkProportion() error {
	for _, t := range fr.rep.Tables {
		if t.Proportion > fr.opts.MaxProportion {
			return fmt.Errorf("the request matches %d of %d rows (%.4f) of %s in input %s, more than --max-matching-proportion %g: nothing was deleted anywhere (check the match, or raise the limit if this is meant)",
				t.SourceRows, t.TableRows, t.Proportion, t.Table, t.Input, fr.opts.MaxProportion)
		}
	}
	return nil
}

// audit records what happened at one target for every subject: rows holds
// each subject's deleted rows, nil when none were counted.
func (fr *forgetRun) audit(target string, rows []int64, err error) {
	for i, s := range fr.subjects {
		a := nopii.SubjectAudit{RequestID: fr.rep.RequestID, Subject: s, At: fr.at, Workflow: fr.wf.Name, Target: target, Status: "done"}
		if rows != nil {
			a.RowsDeleted = rows[i]
		}
		switch {
		case fr.refused != nil:
			a.Status, a.Error = "refused", fr.refused.Error()
		case err != nil:
			a.Status, a.Error = "failed", err.Error()
		}
		fr.audits = append(fr.audits, a)
	}
}

// refuse deletes nothing and audits the refusal, so that the request can
// be shown to have been received and why it was not served.
func (fr *forgetRun) refuse(ctx context.Context) (*SubjectReport, error) {
	for _, name := range fr.names {
		fr.audit(name, nil, nil)
	}
	if fr.opts.IncludeSources {
		for _, si := range fr.inputs {
			fr.audit("source "+si.in.Name, nil, nil)
		}
	}
	fr.errs = append(fr.errs, fr.refused)
	fr.record(ctx)
	return fr.rep.finish(errors.Join(fr.errs...))
}

// forgetInFeeds deletes the subjects' rows from every feed and adds their
// keys and identifiers to its suppression lists.
func (fr *forgetRun) forgetInFeeds(ctx context.Context) {
	hashKey := forgottenHasher(fr.key)
	var ids []string // every request's identifiers, for tables copied later
	for _, q := range fr.reqs {
		for _, m := range q.Matches {
			ids = append(ids, identifierHash(fr.key, m.Column, m.Value))
		}
	}
	for fi, sf := range fr.sfeeds {
		req := nopii.Forget{Workflow: fr.wf.Name, RequestID: fr.rep.RequestID, At: fr.at, Identifiers: ids}
		var where []*SubjectFeedRows
		var tables []*subjectTableRun
		row := 0
		for _, si := range fr.inputs {
			for _, t := range si.tables {
				if t.job != nil && len(t.feedKeys) > 0 {
					ft := nopii.ForgetTable{Key: nopii.StateKey{Workflow: fr.wf.Name, Input: si.in.Name, Table: t.rows.Table},
						Target: t.job.target.Name, Keys: t.feedKeys}
					for _, k := range t.feedKeys {
						ft.Forgotten = append(ft.Forgotten, hashKey([]byte(k)))
					}
					req.Tables = append(req.Tables, ft)
					where = append(where, &fr.rep.Tables[row].Feeds[fi])
					tables = append(tables, t)
				}
				row++
			}
		}
		rows := make([]int64, len(fr.subjects))
		deleted, err := sf.Forget(ctx, req)
		if err != nil {
			err = fmt.Errorf("forget in the %s feed: %w", fr.names[fi], err)
			fr.errs = append(fr.errs, err)
		}
		for i, keys := range deleted {
			where[i].Deleted = int64(len(keys))
			for s := range fr.subjects {
				for _, k := range keys {
					if tables[i].perRequest[s][k] {
						rows[s]++
					}
				}
			}
		}
		fr.audit(fr.names[fi], rows, err)
	}
}

// deleteInSources deletes the subjects' rows from every input's source
// (--include-sources).
func (fr *forgetRun) deleteInSources(ctx context.Context) {
	row := 0
	for _, si := range fr.inputs {
		first := row
		row += len(si.tables)
		rows := make([]int64, len(fr.subjects))
		deleted, err := si.ss.DeleteSubject(ctx, si.all, fr.opts.MaxProportion)
		if err != nil {
			err = fmt.Errorf("delete from input %s: %w", si.in.Name, err)
			fr.errs = append(fr.errs, err)
		} else {
			for _, d := range deleted {
				for i := first; i < row; i++ {
					if fr.rep.Tables[i].Table == d.Table.String() {
						fr.rep.Tables[i].SourceDeleted = d.Rows
					}
				}
			}
			for _, t := range si.tables {
				for s := range rows {
					rows[s] += t.perRows[s]
				}
			}
		}
		fr.audit("source "+si.in.Name, rows, err)
	}
}

// record writes the audit records to every feed.
func (fr *forgetRun) record(ctx context.Context) {
	for fi, sf := range fr.sfeeds {
		if err := sf.RecordSubjectRequests(ctx, fr.audits); err != nil {
			fr.errs = append(fr.errs, fmt.Errorf("record the request in the %s feed: %w", fr.names[fi], err))
		}
	}
}
