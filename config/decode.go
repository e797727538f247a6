package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// This file decodes each section of the file and checks what its values
// mean together, right where the nodes are at hand for positions.

// config decodes the root mapping.
func (d *decoder) config(root *yaml.Node) *Config {
	cfg := &Config{File: d.file}
	root = d.deref(root)
	if !d.mapping(root, "", "a mapping with version, hmac_key, dashboard, agent and workflows") {
		return cfg
	}
	var hmacNode, workflowsNode, agentNode *yaml.Node
	keys := []key{
		{"version", func(v *yaml.Node, p string) {
			v = d.deref(v)
			if n, ok := d.integer(v, p); ok && n != 1 {
				d.errorf(v, p, "unsupported version %d: must be 1", n)
			} else if ok {
				cfg.Version = 1
			}
		}},
		{"hmac_key", func(v *yaml.Node, p string) { hmacNode, cfg.HMACKey = v, d.secret(v, p) }},
		{"dashboard", func(v *yaml.Node, p string) { cfg.Dashboard = d.dashboard(v, p) }},
		{"agent", func(v *yaml.Node, p string) { agentNode = v }},
		{"workflows", func(v *yaml.Node, p string) { workflowsNode, cfg.Workflows = v, d.workflows(v, p) }},
	}
	ks := d.fields(root, "", keys)
	for _, p := range ks.unknown {
		// x- keys are free, as in Docker Compose files: a place to define
		// YAML anchors that the sections below merge or refer to.
		if !strings.HasPrefix(p.name, "x-") {
			d.unknownKey(p, "", "at top level", append(keyNames(keys), "x-…"))
		}
	}
	cfg.Agent = d.agent(agentNode, "agent", root)

	if !ks.has("version") {
		d.errorf(root, "version", "required, must be 1")
	}
	if !ks.has("workflows") {
		d.errorf(root, "workflows", "required: at least one workflow")
	} else if len(cfg.Workflows) == 0 && d.isEmptyList(workflowsNode) {
		d.errorf(workflowsNode, "workflows", "at least one workflow is required")
	}

	switch {
	case cfg.HMACKey == "" && d.keyNeed != nil:
		field := "hmac_key"
		msg := fmt.Sprintf("required: rule %s at %s needs a key; set hmac_key: ${NOPII_HMAC_KEY} at the top of the file (at least %d bytes, e.g. from openssl rand -base64 48)",
			d.keyNeed.rule, d.keyNeed.field, MinHMACKeyLen)
		if hmacNode != nil {
			if d.deref(hmacNode).Kind != yaml.ScalarNode {
				break // reported as the wrong kind of value
			}
			d.errorf(hmacNode, field, "is empty, but %s", strings.TrimPrefix(msg, "required: "))
		} else {
			d.errAt(d.keyNeed.pos, field, errors.New(msg))
		}
	case cfg.HMACKey != "" && len(cfg.HMACKey) < MinHMACKeyLen:
		// Neither the key nor its length go into the message.
		d.errorf(hmacNode, "hmac_key", "too short: must be at least %d bytes (generate one with: openssl rand -base64 48)", MinHMACKeyLen)
	}
	return cfg
}

// dashboard decodes the dashboard section; null is no dashboard.
func (d *decoder) dashboard(v *yaml.Node, path string) *Dashboard {
	v = d.deref(v)
	if isNull(v) || !d.mapping(v, path, "a mapping with url, token and heartbeat_interval") {
		return nil
	}
	db := &Dashboard{Pos: nodePos(d.file, v), HeartbeatInterval: DefaultHeartbeatInterval}
	var urlNode, intervalNode *yaml.Node
	keys := []key{
		{"url", func(v *yaml.Node, p string) { urlNode, db.URL = v, d.str(v, p) }},
		{"token", func(v *yaml.Node, p string) { db.Token = d.secret(v, p) }},
		{"heartbeat_interval", func(v *yaml.Node, p string) {
			if dur, ok := d.duration(v, p); ok {
				intervalNode, db.HeartbeatInterval = v, dur
			}
		}},
	}
	ks := d.fields(v, path, keys)
	d.reportUnknown(ks, path, "in dashboard", keyNames(keys))
	switch {
	case db.URL == "" && urlNode == nil:
		d.errorf(v, joinPath(path, "url"), "required: the dashboard's address, e.g. http://nopii-dashboard:8090")
	case !isHTTPURL(db.URL):
		// The URL is not echoed: it may carry user:password@.
		d.errorf(urlNode, joinPath(path, "url"), "must be an http:// or https:// URL with a host, e.g. http://nopii-dashboard:8090")
	}
	if db.Token == "" {
		d.errorf(v, joinPath(path, "token"), "required when dashboard is set: the agent token that nopii dashboard token create prints, e.g. ${NOPII_AGENT_TOKEN}")
	}
	if intervalNode != nil && db.HeartbeatInterval == 0 {
		d.errorf(intervalNode, joinPath(path, "heartbeat_interval"), "must be longer than 0")
	}
	return db
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// agent decodes the agent section (v may be nil when absent) and fills in
// its defaults; errors about a missing section point at root.
func (d *decoder) agent(v *yaml.Node, path string, root *yaml.Node) Agent {
	a := Agent{Listen: DefaultListen}
	at := root
	var listenNode *yaml.Node
	if v != nil {
		v = d.deref(v)
		at = v
		if !isNull(v) && d.mapping(v, path, "a mapping with name and listen") {
			keys := []key{
				{"name", func(v *yaml.Node, p string) { a.Name = d.str(v, p) }},
				{"listen", func(v *yaml.Node, p string) {
					if s := d.str(v, p); s != "" {
						listenNode, a.Listen = v, s
					}
				}},
			}
			ks := d.fields(v, path, keys)
			d.reportUnknown(ks, path, "in agent", keyNames(keys))
		}
	}
	if a.Name == "" {
		h, err := d.opts.Hostname()
		switch {
		case err != nil:
			d.errorf(at, joinPath(path, "name"), "not set, and the host name is unknown (%v): set agent.name", err)
		case h == "":
			d.errorf(at, joinPath(path, "name"), "not set, and the host name is empty: set agent.name")
		}
		a.Name = h
	}
	if listenNode != nil {
		if err := checkListen(a.Listen); err != nil {
			d.errorf(listenNode, joinPath(path, "listen"), "%v", err)
		}
	}
	return a
}

func checkListen(s string) error {
	bad := fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:8080, or :8080 for every interface)", truncate(s, 60))
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return bad
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return bad
	}
	return nil
}

// workflows decodes the list of workflows; names are unique.
func (d *decoder) workflows(v *yaml.Node, path string) []Workflow {
	items, ok := d.list(v, path, "a list of workflows")
	if !ok {
		return nil
	}
	out := make([]Workflow, 0, len(items))
	first := make(map[string]Pos)
	for i, it := range items {
		w, nameNode := d.workflow(it, indexPath(path, i))
		if w.Name != "" {
			if p, dup := first[w.Name]; dup {
				d.errorf(nameNode, joinPath(indexPath(path, i), "name"), "duplicate workflow name %q (first at line %d, column %d)", w.Name, p.Line, p.Col)
			} else {
				first[w.Name] = nodePos(d.file, nameNode)
			}
		}
		out = append(out, w)
	}
	return out
}

// workflow decodes one workflow; it also returns the node of its name.
func (d *decoder) workflow(n *yaml.Node, path string) (Workflow, *yaml.Node) {
	n = d.deref(n)
	w := Workflow{Pos: nodePos(d.file, n), OnUnclassified: DefaultOnUnclassified}
	if !d.mapping(n, path, "a workflow (a mapping with name, inputs and feeds)") {
		return w, n
	}
	var nameNode *yaml.Node
	keys := []key{
		{"name", func(v *yaml.Node, p string) { nameNode, w.Name = v, d.str(v, p) }},
		{"schedule", func(v *yaml.Node, p string) {
			w.Schedule = d.str(v, p)
			if w.Schedule != "" {
				if err := checkSchedule(w.Schedule); err != nil {
					d.errorf(v, p, "%v", err)
				}
			}
		}},
		{"on_unclassified", func(v *yaml.Node, p string) {
			if s := d.enum(v, p, "an on_unclassified action", OnUnclassifiedFail, OnUnclassifiedWarn, OnUnclassifiedStrict); s != "" {
				w.OnUnclassified = s
			}
		}},
		{"parallelism", func(v *yaml.Node, p string) {
			if i, ok := d.integer(v, p); ok && i < 0 {
				d.errorf(v, p, "must be 0 (the default) or more")
			} else {
				w.Parallelism = i
			}
		}},
		{"lock_wait", func(v *yaml.Node, p string) {
			if dur, ok := d.duration(v, p); ok {
				w.LockWait = dur
			}
		}},
		{"inputs", func(v *yaml.Node, p string) { w.Inputs = d.inputs(v, p) }},
		{"feeds", func(v *yaml.Node, p string) { w.Feeds = d.feeds(v, p) }},
	}
	ks := d.fields(n, path, keys)
	where := fmt.Sprintf("in workflow %q", w.Name)
	if w.Name == "" {
		where = "in workflow " + path
	}
	d.reportUnknown(ks, path, where, keyNames(keys))

	switch {
	case nameNode == nil:
		nameNode = n
		d.errorf(n, joinPath(path, "name"), "required: the workflow's name, e.g. ml-experimentation")
	case !validName(w.Name):
		d.errorf(nameNode, joinPath(path, "name"), "%q is not a valid workflow name: use lower-case letters, digits, - and _, starting with a letter or digit (it names folders and replication slots)", truncate(w.Name, 60))
	}
	d.requireList(n, ks, "inputs", path, len(w.Inputs), "at least one input (a source database)")
	d.requireList(n, ks, "feeds", path, len(w.Feeds), "at least one feed (twin, s3 or files)")

	// A full copy swaps tables in the twin: a twin that is a source would
	// lose its data. Other spellings of the same database are for the
	// agent to catch when it connects.
	for i, f := range w.Feeds {
		for _, in := range w.Inputs {
			if f.Type == FeedTwin && f.DSN != "" && f.DSN == in.DSN {
				d.errAt(f.Pos, joinPath(indexPath(joinPath(path, "feeds"), i), "dsn"),
					fmt.Errorf("the twin's dsn is that of input %q: the twin must be another database, or a run would overwrite the source's tables", truncate(in.Name, 60)))
			}
		}
	}
	return w, nameNode
}

// requireList reports a list key of mapping n that is missing or empty.
func (d *decoder) requireList(n *yaml.Node, ks keySet, name, path string, got int, what string) {
	p, ok := ks.known[name]
	switch {
	case !ok:
		d.errorf(n, joinPath(path, name), "required: %s", what)
	case got == 0 && d.isEmptyList(p.val):
		d.errorf(p.key, joinPath(path, name), "needs %s", what)
	}
}

// isEmptyList reports whether v is null or an empty sequence, as opposed to
// a value of the wrong kind (reported already).
func (d *decoder) isEmptyList(v *yaml.Node) bool {
	v = d.deref(v)
	return isNull(v) || v.Kind == yaml.SequenceNode && len(v.Content) == 0
}

// validName reports whether s matches [a-z0-9][a-z0-9_-]*.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

// validPrefix reports whether s matches [a-z_][a-z0-9_]*.
func validPrefix(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', c == '_':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// checkSchedule checks a crontab line as the agent's scheduler reads it.
func checkSchedule(s string) error {
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return errors.New("schedules are read in UTC: remove the time zone")
	}
	if rest, ok := strings.CutPrefix(s, "@every "); ok {
		// cron.Every turns a zero or negative interval into one second.
		if dur, err := time.ParseDuration(strings.TrimSpace(rest)); err == nil && dur < time.Second {
			return errors.New("@every needs an interval of at least 1s")
		}
	}
	if _, err := cron.ParseStandard(s); err != nil {
		return fmt.Errorf("invalid cron schedule: %v (write minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\", or @hourly, @daily, @weekly, @every 6h)", err)
	}
	return nil
}

// inputs decodes a workflow's inputs; names are unique within it.
func (d *decoder) inputs(v *yaml.Node, path string) []Input {
	items, ok := d.list(v, path, "a list of inputs")
	if !ok {
		return nil
	}
	out := make([]Input, 0, len(items))
	first := make(map[string]Pos)
	for i, it := range items {
		in, nameNode := d.input(it, indexPath(path, i))
		if in.Name != "" {
			if p, dup := first[in.Name]; dup {
				d.errorf(nameNode, joinPath(indexPath(path, i), "name"), "duplicate input name %q in this workflow (first at line %d, column %d)", truncate(in.Name, 60), p.Line, p.Col)
			} else {
				first[in.Name] = nodePos(d.file, nameNode)
			}
		}
		out = append(out, in)
	}
	return out
}

// input decodes one input; it also returns the node of its name.
func (d *decoder) input(n *yaml.Node, path string) (Input, *yaml.Node) {
	n = d.deref(n)
	in := Input{Pos: nodePos(d.file, n)}
	if !d.mapping(n, path, "an input (a mapping with name, dsn and tables)") {
		return in, n
	}
	var nameNode, prefixNode, walWarnNode *yaml.Node
	keys := []key{
		{"name", func(v *yaml.Node, p string) { nameNode, in.Name = v, d.str(v, p) }},
		{"dsn", func(v *yaml.Node, p string) { in.DSN = d.secret(v, p) }},
		{"target_schema_prefix", func(v *yaml.Node, p string) { prefixNode, in.TargetSchemaPrefix = v, d.str(v, p) }},
		{"slot_wal_warn", func(v *yaml.Node, p string) {
			if n, ok := d.size(v, p); ok {
				walWarnNode, in.SlotWALWarn = v, n
			}
		}},
		{"tables", func(v *yaml.Node, p string) { in.Tables = d.tables(v, p) }},
	}
	ks := d.fields(n, path, keys)
	where := fmt.Sprintf("in input %q", in.Name)
	if in.Name == "" {
		where = "in input " + path
	}
	d.reportUnknown(ks, path, where, keyNames(keys))
	if in.Name == "" {
		if nameNode == nil {
			nameNode = n
		}
		d.errorf(nameNode, joinPath(path, "name"), "required: a name for this source, unique in the workflow, e.g. prod")
	}
	if in.DSN == "" {
		at := n
		if p, ok := ks.known["dsn"]; ok {
			at = p.val
		}
		d.errorf(at, joinPath(path, "dsn"), "required: the source database's connection string, e.g. ${PROD_DATABASE_URL}")
	}
	if !validPrefix(in.TargetSchemaPrefix) {
		d.errorf(prefixNode, joinPath(path, "target_schema_prefix"), "%q is not a valid prefix: use lower-case letters, digits and _, not starting with a digit (e.g. billing_)", truncate(in.TargetSchemaPrefix, 60))
	}
	switch {
	case walWarnNode == nil && !ks.has("slot_wal_warn"):
		in.SlotWALWarn = DefaultSlotWALWarn
	case walWarnNode != nil && in.SlotWALWarn == 0:
		d.errorf(walWarnNode, joinPath(path, "slot_wal_warn"), "must be more than 0 bytes, e.g. 1GiB")
	}
	d.requireList(n, ks, "tables", path, len(in.Tables), "at least one table")
	return in, nameNode
}

// tables decodes an input's tables; names are unique within it.
func (d *decoder) tables(v *yaml.Node, path string) []Table {
	items, ok := d.list(v, path, "a list of tables")
	if !ok {
		return nil
	}
	out := make([]Table, 0, len(items))
	first := make(map[[2]string]Pos)
	for i, it := range items {
		t, nameNode := d.table(it, indexPath(path, i))
		if t.Schema != "" {
			k := [2]string{t.Schema, t.Table}
			if p, dup := first[k]; dup {
				d.errorf(nameNode, joinPath(indexPath(path, i), "name"), "duplicate table %s in this input (first at line %d, column %d)", truncate(t.Name, 60), p.Line, p.Col)
			} else {
				first[k] = nodePos(d.file, nameNode)
			}
		}
		out = append(out, t)
	}
	return out
}

// table decodes one table entry and checks its options together; it also
// returns the node of its name.
func (d *decoder) table(n *yaml.Node, path string) (Table, *yaml.Node) {
	n = d.deref(n)
	t := Table{Pos: nodePos(d.file, n)}
	if !d.mapping(n, path, "a table (a mapping such as {name: public.customer})") {
		return t, n
	}
	var nameNode, modeNode, windowNode, windowByNode *yaml.Node
	windowOK := false
	var columnsNode *yaml.Node
	keys := []key{
		{"name", func(v *yaml.Node, p string) { nameNode, t.Name = v, d.str(v, p) }},
		{"mode", func(v *yaml.Node, p string) {
			modeNode, t.Mode = v, d.enum(v, p, "a mode", ModeFull, ModeDelta, ModeCDC)
		}},
		{"updated_at", func(v *yaml.Node, p string) { t.UpdatedAt = d.str(v, p) }},
		{"created_at", func(v *yaml.Node, p string) { t.CreatedAt = d.str(v, p) }},
		{"window", func(v *yaml.Node, p string) { windowNode = v; t.Window, windowOK = d.duration(v, p) }},
		{"window_by", func(v *yaml.Node, p string) {
			windowByNode, t.WindowBy = v, d.enum(v, p, "a window_by value", WindowByCreatedAt, WindowByUpdatedAt, WindowByBoth)
		}},
		{"primary_key", func(v *yaml.Node, p string) {
			t.PrimaryKey = d.strList(v, p, "a column name or a list of column names")
		}},
		{"identifies", func(v *yaml.Node, p string) {
			t.Identifies = d.strList(v, p, "a column name or a list of column names")
		}},
		{"detect_deletes", func(v *yaml.Node, p string) { t.DetectDeletes = d.boolean(v, p) }},
		{"exclude", func(v *yaml.Node, p string) { t.Exclude = d.boolean(v, p) }},
		{"subset", func(v *yaml.Node, p string) { t.Subset = d.subset(v, p) }},
		{"references", func(v *yaml.Node, p string) { t.References = d.references(v, p) }},
		// Columns are decoded after the name is known, for messages.
		{"columns", func(v *yaml.Node, p string) { columnsNode = v }},
	}
	ks := d.fields(n, path, keys)
	for name, p := range ks.known {
		if t.KeyPos == nil {
			t.KeyPos = map[string]Pos{}
		}
		t.KeyPos[name] = nodePos(d.file, p.val)
		if v := d.deref(p.val); v.Kind == yaml.SequenceNode {
			// Each item of a list (primary_key: [a, b]) at its own place.
			for i, item := range v.Content {
				t.KeyPos[fmt.Sprintf("%s[%d]", name, i)] = nodePos(d.file, item)
			}
		}
	}

	switch {
	case nameNode == nil:
		nameNode = n
		d.errorf(n, joinPath(path, "name"), "required: the schema-qualified table name, e.g. public.customer")
	case t.Name == "":
		d.errorf(nameNode, joinPath(path, "name"), "must not be empty: the schema-qualified table name, e.g. public.customer")
	default:
		var err error
		if t.Schema, t.Table, t.Pattern, err = SplitTableName(t.Name); err != nil {
			d.errorf(nameNode, joinPath(path, "name"), "%v", err)
		}
	}
	where := "in table " + path
	if t.Name != "" {
		where = fmt.Sprintf("in table %q", truncate(t.Name, 60))
	}
	d.reportUnknown(ks, path, where, keyNames(keys))
	if columnsNode != nil {
		t.Columns = d.columns(columnsNode, joinPath(path, "columns"), t.Name)
	}

	if t.Exclude {
		for _, p := range ks.order {
			if p.name != "name" && p.name != "exclude" {
				d.errorf(p.key, joinPath(path, p.name), "%s cannot go with exclude: true (an excluded table is not copied at all)", p.name)
			}
		}
		return t, nameNode
	}
	if t.Pattern {
		for _, k := range []string{"columns", "primary_key", "identifies", "subset", "references"} {
			if p, ok := ks.known[k]; ok {
				d.errorf(p.key, joinPath(path, k), "a pattern selects tables with default options and takes no %s: list each table by name to give it %s (e.g. - name: public.customer)", k, k)
			}
		}
	}

	switch t.Mode {
	case ModeDelta:
		if t.UpdatedAt == "" && t.CreatedAt == "" {
			d.errorf(modeNode, joinPath(path, "mode"), "mode delta needs updated_at or created_at: the column that tells which rows changed")
		}
	case ModeFull:
		for _, k := range []string{"updated_at", "created_at"} {
			if p, ok := ks.known[k]; ok && !isNull(d.deref(p.val)) {
				d.errorf(p.key, joinPath(path, k), "%s is not used by mode full: remove it, or set mode: delta", k)
			}
		}
	}
	if p, ok := ks.known["detect_deletes"]; ok && t.DetectDeletes {
		switch t.EffectiveMode() {
		case ModeCDC:
			d.errorf(p.key, joinPath(path, "detect_deletes"), "detect_deletes is for mode delta: mode cdc removes deleted rows by itself")
		case ModeFull:
			d.errorf(p.key, joinPath(path, "detect_deletes"), "detect_deletes is for mode delta (set updated_at or created_at): a full copy has no deleted rows left")
		}
	}

	if windowNode != nil && windowOK {
		if t.Window == 0 {
			d.errorf(windowNode, joinPath(path, "window"), "must be longer than 0 (leave window out to copy every row)")
		} else {
			if t.WindowBy == "" && windowByNode == nil {
				t.WindowBy = DefaultWindowBy
			}
			at, field := windowNode, joinPath(path, "window")
			if windowByNode != nil {
				at, field = windowByNode, joinPath(path, "window_by")
			}
			if (t.WindowBy == WindowByCreatedAt || t.WindowBy == WindowByBoth) && t.CreatedAt == "" {
				d.errorf(at, field, "a window by created_at needs created_at: the column that holds when a row was inserted")
			}
			if (t.WindowBy == WindowByUpdatedAt || t.WindowBy == WindowByBoth) && t.UpdatedAt == "" {
				d.errorf(at, field, "a window by updated_at needs updated_at: the column that holds when a row last changed")
			}
		}
	}
	if p, ok := ks.known["window_by"]; ok && windowNode == nil {
		d.errorf(p.key, joinPath(path, "window_by"), "window_by needs window (e.g. window: 90d)")
	}
	return t, nameNode
}

// columns decodes the column rules of a table, in file order.
func (d *decoder) columns(v *yaml.Node, path, table string) []ColumnRule {
	v = d.deref(v)
	if isNull(v) {
		return nil
	}
	if !d.mapping(v, path, "a mapping of column names to rules, such as {email: {rule: redact_email}}") {
		return nil
	}
	var out []ColumnRule
	for _, p := range d.pairs(v, path) {
		cpath := joinPath(path, p.name)
		c := ColumnRule{Column: p.name, Pos: nodePos(d.file, p.key)}
		if p.name == "" {
			d.errorf(p.key, cpath, "empty column name")
			continue
		}
		rv := d.deref(p.val)
		if !d.mapping(rv, cpath, "a rule such as {rule: destroy} or {rule: fake, kind: first_name}") {
			continue
		}
		c.Params = make(map[string]any)
		c.ParamPos = make(map[string]Pos)
		valNodes := make(map[string]*yaml.Node)
		var ruleNode *yaml.Node
		for _, q := range d.pairs(rv, cpath) {
			if q.name == "rule" {
				ruleNode = d.deref(q.val)
				c.Rule = d.str(q.val, joinPath(cpath, "rule"))
				c.RulePos = nodePos(d.file, ruleNode)
				continue
			}
			c.Params[q.name] = d.value(q.val, joinPath(cpath, q.name), 0)
			c.ParamPos[q.name] = nodePos(d.file, q.key)
			valNodes[q.name] = d.deref(q.val)
		}
		switch {
		case ruleNode == nil:
			c.RulePos = c.Pos
			d.errorf(p.key, joinPath(cpath, "rule"), "required: the rule for column %s, e.g. {rule: destroy}", truncate(p.name, 60))
		case c.Rule == "":
			d.errorf(ruleNode, joinPath(cpath, "rule"), "must not be empty: name a rule, e.g. destroy")
		default:
			d.checkRule(&c, cpath, ruleNode, valNodes)
			d.noteKeyNeed(c.Rule, c.Params, c.RulePos, cpath, 0)
		}
		out = append(out, c)
	}
	return out
}

// checkRule runs Options.CheckRule on a column rule and reports its error
// at the parameter it names, or else at the rule.
func (d *decoder) checkRule(c *ColumnRule, path string, ruleNode *yaml.Node, valNodes map[string]*yaml.Node) {
	if d.opts.CheckRule == nil || d.failed[ruleNode] {
		return
	}
	err := d.opts.CheckRule(c.Rule, c.Params)
	if err == nil {
		return
	}
	pos, field := c.RulePos, joinPath(path, "rule")
	var pe interface{ ParamName() string }
	if errors.As(err, &pe) {
		name := pe.ParamName()
		if pp, ok := c.ParamPos[name]; ok {
			if d.failed[valNodes[name]] {
				return // its ${VAR} did not expand; that error says why
			}
			pos, field = pp, joinPath(path, name)
		}
	}
	d.errAt(pos, field, err)
}

// noteKeyNeed records the first rule that needs hmac_key, looking into the
// rules under a json rule's paths.
func (d *decoder) noteKeyNeed(rule string, params map[string]any, pos Pos, path string, depth int) {
	if d.keyNeed != nil || depth > maxDepth {
		return
	}
	if d.opts.RuleNeedsKey(rule) {
		d.keyNeed = &keyNeed{pos: pos, rule: rule, field: path}
		return
	}
	if rule != "json" {
		return
	}
	paths, _ := params["paths"].(map[string]any)
	names := make([]string, 0, len(paths))
	for name := range paths {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if sub, ok := paths[name].(map[string]any); ok {
			if r, ok := sub["rule"].(string); ok {
				d.noteKeyNeed(r, sub, pos, path+".paths["+strconv.Quote(name)+"]", depth+1)
			}
		}
	}
}

// feeds decodes a workflow's feeds.
func (d *decoder) feeds(v *yaml.Node, path string) []Feed {
	items, ok := d.list(v, path, "a list of feeds")
	if !ok {
		return nil
	}
	out := make([]Feed, 0, len(items))
	for i, it := range items {
		out = append(out, d.feed(it, indexPath(path, i)))
	}
	return out
}

// feedKeys lists the keys each feed type takes, type first.
func feedKeys(typ string) []string {
	switch typ {
	case FeedTwin:
		return []string{"type", "dsn", "schema", "lock_timeout"}
	case FeedS3:
		return []string{"type", "bucket", "prefix", "region", "endpoint", "format", "compression", "part_size", "retain", "sse", "sse_kms_key_id", "access_key_id", "secret_access_key"}
	case FeedFiles:
		return []string{"type", "path", "format", "compression", "part_size", "retain"}
	}
	return nil
}

// feed decodes one feed. Keys are decoded whatever the type, then checked
// against the keys of its type, so that a key of another type is reported
// as such rather than as unknown.
func (d *decoder) feed(n *yaml.Node, path string) Feed {
	n = d.deref(n)
	f := Feed{Pos: nodePos(d.file, n)}
	if !d.mapping(n, path, "a feed (a mapping with type: twin, s3 or files)") {
		return f
	}
	var typeNode, formatNode, compressionNode, endpointNode, schemaNode *yaml.Node
	var partSizeNode, retainNode *yaml.Node // set when the value is valid
	keys := []key{
		{"type", func(v *yaml.Node, p string) {
			typeNode, f.Type = v, d.enum(v, p, "a feed type", FeedTwin, FeedS3, FeedFiles)
		}},
		{"dsn", func(v *yaml.Node, p string) { f.DSN = d.secret(v, p) }},
		{"schema", func(v *yaml.Node, p string) {
			schemaNode, f.Schema = v, d.enum(v, p, "a twin schema", SchemaFull, SchemaDataOnly)
		}},
		{"lock_timeout", func(v *yaml.Node, p string) {
			if dur, ok := d.duration(v, p); ok && dur <= 0 {
				d.errorf(v, p, "must be more than 0")
			} else {
				f.LockTimeout = dur
			}
		}},
		{"bucket", func(v *yaml.Node, p string) { f.Bucket = d.str(v, p) }},
		{"prefix", func(v *yaml.Node, p string) { f.Prefix = d.str(v, p) }},
		{"region", func(v *yaml.Node, p string) { f.Region = d.str(v, p) }},
		{"endpoint", func(v *yaml.Node, p string) { endpointNode, f.Endpoint = v, d.str(v, p) }},
		{"sse", func(v *yaml.Node, p string) {
			f.SSE = d.enum(v, p, "a server-side encryption", SSEAES256, SSEKMS)
		}},
		{"sse_kms_key_id", func(v *yaml.Node, p string) { f.SSEKMSKeyID = d.str(v, p) }},
		{"access_key_id", func(v *yaml.Node, p string) { f.AccessKeyID = d.str(v, p) }},
		{"secret_access_key", func(v *yaml.Node, p string) { f.SecretAccessKey = d.secret(v, p) }},
		{"path", func(v *yaml.Node, p string) { f.Path = d.str(v, p) }},
		{"format", func(v *yaml.Node, p string) {
			formatNode, f.Format = v, d.enum(v, p, "a format", FormatParquet, FormatCSV, FormatJSONL)
		}},
		{"compression", func(v *yaml.Node, p string) {
			compressionNode, f.Compression = v, d.enum(v, p, "a compression", CompressionNone, CompressionGzip, CompressionZstd, CompressionSnappy)
		}},
		{"part_size", func(v *yaml.Node, p string) {
			if n, ok := d.size(v, p); ok {
				partSizeNode, f.PartSize = v, n
			}
		}},
		{"retain", func(v *yaml.Node, p string) {
			if n, ok := d.integer(v, p); ok {
				retainNode, f.Retain = v, n
			}
		}},
	}
	ks := d.fields(n, path, keys)

	valid := feedKeys(f.Type)
	if valid == nil {
		// No usable type: judge keys against those of every type.
		d.reportUnknown(ks, path, "in feed", keyNames(keys))
		if typeNode == nil {
			d.errorf(n, joinPath(path, "type"), "required: twin, s3 or files")
		}
		return f
	}
	where := fmt.Sprintf("in %s %s feed", article(f.Type), f.Type)
	d.reportUnknown(ks, path, where, valid)
	for _, p := range ks.order {
		if !slices.Contains(valid, p.name) {
			d.errorf(p.key, joinPath(path, p.name), "%s is not a key of %s %s feed (%s feeds take: %s)", p.name, article(f.Type), f.Type, f.Type, strings.Join(valid, ", "))
		}
	}

	switch f.Type {
	case FeedTwin:
		if f.DSN == "" {
			d.errorf(valueOr(ks, "dsn", n), joinPath(path, "dsn"), "required: the twin database's connection string, e.g. ${TWIN_DATABASE_URL}")
		}
		if f.Schema == "" && schemaNode == nil {
			f.Schema = SchemaFull
		}
		return f
	case FeedS3:
		switch {
		case f.Bucket == "":
			d.errorf(valueOr(ks, "bucket", n), joinPath(path, "bucket"), "required: the bucket's name")
		case strings.ContainsAny(f.Bucket, "/:"):
			d.errorf(ks.known["bucket"].val, joinPath(path, "bucket"), "%q is not a bucket name: give the name alone (lake), and the folder in prefix", truncate(f.Bucket, 60))
		}
		if endpointNode != nil && f.Endpoint != "" && !isHTTPURL(f.Endpoint) {
			d.errorf(endpointNode, joinPath(path, "endpoint"), "must be an http:// or https:// URL with a host, e.g. http://minio:9000")
		}
		if f.SSEKMSKeyID != "" && f.SSE != SSEKMS {
			d.errorf(ks.known["sse_kms_key_id"].key, joinPath(path, "sse_kms_key_id"), "sse_kms_key_id needs sse: aws:kms")
		}
		if (f.AccessKeyID == "") != (f.SecretAccessKey == "") {
			at, field := valueOr(ks, "access_key_id", n), "secret_access_key"
			if f.AccessKeyID == "" {
				at, field = valueOr(ks, "secret_access_key", n), "access_key_id"
			}
			d.errorf(at, joinPath(path, field), "access_key_id and secret_access_key go together: set both, or neither to use the AWS default credentials")
		}
	case FeedFiles:
		if f.Path == "" {
			d.errorf(valueOr(ks, "path", n), joinPath(path, "path"), "required: the directory to write to, e.g. ./nopii-out")
		}
	}

	// s3 and files. Values that were invalid are "" or their node is nil:
	// they were reported, and get no default and no further check.
	if f.Format == "" && formatNode == nil {
		f.Format = DefaultFormat
	}
	if f.Compression == "" && compressionNode == nil {
		f.Compression = DefaultCompression
	}
	if f.Compression == CompressionSnappy && f.Format != "" && f.Format != FormatParquet {
		d.errorf(compressionNode, joinPath(path, "compression"), "snappy is for parquet only: %s takes none, gzip or zstd", f.Format)
	}
	switch {
	case partSizeNode == nil && !ks.has("part_size"):
		f.PartSize = DefaultPartSize
	case partSizeNode != nil && f.PartSize == 0:
		d.errorf(partSizeNode, joinPath(path, "part_size"), "must be more than 0 bytes, e.g. 128MiB")
	}
	switch {
	case retainNode == nil && !ks.has("retain"):
		f.Retain = DefaultRetain
	case retainNode != nil && f.Retain < 1:
		d.errorf(retainNode, joinPath(path, "retain"), "must be at least 1: the number of snapshots kept per table")
	}
	return f
}

// article returns the indefinite article of a feed type as it is read
// aloud: a twin, an s3 ("ess-three"), a files feed.
func article(typ string) string {
	if typ == FeedS3 {
		return "an"
	}
	return "a"
}

// valueOr returns the value node of key name, or n when the key is absent.
func valueOr(ks keySet, name string, n *yaml.Node) *yaml.Node {
	if p, ok := ks.known[name]; ok {
		return p.val
	}
	return n
}

// size decodes part_size: an integer of bytes or a string with a unit.
func (d *decoder) size(v *yaml.Node, path string) (int64, bool) {
	v = d.deref(v)
	if v.Kind != yaml.ScalarNode || isNull(v) {
		d.errorf(v, path, "expected a size such as 134217728, 64MB or 128MiB, got %s", describe(v))
		return 0, false
	}
	n, err := ParseSize(v.Value)
	if err != nil {
		d.errorf(v, path, "%v", err)
		return 0, false
	}
	return n, true
}
