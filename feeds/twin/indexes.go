package twin

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/internal/pgconnect"
)

// A deferred full copy (its shadow committed anyway, for the publish)
// builds its indexes apart: the shadow is committed with its rows first,
// then each index is built in its own transaction on a connection of its
// own, as many at once across the feed's loads as Options.IndexBuilds
// (CREATE INDEX takes SHARE: builds on one table run together), so that
// the indexes of the run's last, largest table do not build one after
// another while cores idle. pg_restore -j does the same. Unique and
// primary key constraints get their index built so, and attached after
// (ADD CONSTRAINT … USING INDEX, a catalog change); exclusion and CHECK
// constraints, and those whose index the source did not give, are built
// as before, one after another, in the load's last transaction.

// indexBuild is one index built apart.
type indexBuild struct {
	what   string    // for notes: "index x", "primary key x"
	name   string    // the source's name of the object, for leftOut
	sql    string    // CREATE [UNIQUE] INDEX tmp ON shadow …
	attach string    // ADD CONSTRAINT … USING INDEX, for a constraint's index
	rename [2]string // temporary → final name
	err    error
}

// buildsApart reports whether the load builds its indexes apart: a
// deferred full copy of a plain table, on a feed with more than one build
// at once.
func (l *fullLoad) buildsApart() bool {
	return l.target.Deferred && l.feed.opts.IndexBuilds > 1 && !l.partitioned()
}

// buildApart commits the loaded shadow, builds its indexes apart, then
// begins the load's last transaction: the constraints attached or built,
// what users made on the old table, the state; finish commits it.
func (l *fullLoad) buildApart(ctx context.Context) (time.Duration, error) {
	name := l.target.Name
	l.spkIndex = shortName(l.shadow, "_spk")
	l.spkCons = shortName(name.Name, "_source_primary_key_key")
	start := time.Now()
	if !l.registered {
		if err := l.register(ctx, l.shadowName(), pendingShadow); err != nil {
			return 0, err
		}
	}
	if _, err := l.exec(ctx, "COMMIT"); err != nil {
		return 0, fmt.Errorf("commit the loaded shadow: %w", err)
	}
	spk := nopii.QuoteIdent(nopii.SourcePrimaryKeyColumn)
	builds := []*indexBuild{{what: "unique index on " + nopii.SourcePrimaryKeyColumn,
		sql: "CREATE UNIQUE INDEX " + nopii.QuoteIdent(l.spkIndex) + " ON " + l.shadowName() + " (" + spk + ")"}}
	var serial objects
	add := func(o objects) {
		for _, c := range o.constraints {
			if c.Kind == nopii.ConstraintForeignKey {
				continue
			}
			if c.IndexDef == "" || (c.Kind != nopii.ConstraintPrimaryKey && c.Kind != nopii.ConstraintUnique) {
				serial.constraints = append(serial.constraints, c)
				continue
			}
			tmp := tempName(c.Name)
			kind := "UNIQUE"
			if c.Kind == nopii.ConstraintPrimaryKey {
				kind = "PRIMARY KEY"
			}
			builds = append(builds, &indexBuild{what: c.Kind.String() + " " + c.Name, name: c.Name,
				sql:    "CREATE UNIQUE INDEX " + nopii.QuoteIdent(tmp) + " ON " + l.shadowName() + " " + c.IndexDef,
				attach: "ALTER TABLE " + l.shadowName() + " ADD CONSTRAINT " + nopii.QuoteIdent(tmp) + " " + kind + " USING INDEX " + nopii.QuoteIdent(tmp) + deferrable(c.Def),
				rename: [2]string{tmp, c.Name}})
		}
		for _, ix := range o.indexes {
			unique := ""
			if ix.Unique {
				unique = "UNIQUE "
			}
			tmp := tempName(ix.Name)
			builds = append(builds, &indexBuild{what: "index " + ix.Name, name: ix.Name,
				sql: "CREATE " + unique + "INDEX " + nopii.QuoteIdent(tmp) + " ON " + l.shadowName() + " " + ix.Def, rename: [2]string{tmp, ix.Name}})
		}
	}
	add(l.sourceObjects())
	sourceBuilds := len(builds)
	// What users made on the old table: read from the catalog (no lock on
	// the table), built with the rest; the swap builds what they make
	// meanwhile.
	l.carried = map[string]bool{}
	oid, err := l.oldTable(ctx)
	if err != nil {
		return 0, err
	}
	users := &kept{}
	if oid != nil {
		if err := l.userObjects(ctx, *oid, l.spkCons, users); err != nil {
			return 0, fmt.Errorf("read what users made on the table: %w", err)
		}
		for _, c := range users.constraints {
			l.carried[c.Name] = true
		}
		for _, ix := range users.indexes {
			l.carried[ix.Name] = true
		}
	}
	userSerial := len(serial.constraints)
	add(objects{constraints: users.constraints, indexes: users.indexes})
	l.feed.buildAll(ctx, builds)
	if builds[0].err != nil {
		return 0, fmt.Errorf("build unique index on %s: %w", nopii.SourcePrimaryKeyColumn, builds[0].err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	// The load's last transaction, which finish commits.
	lock := tableLockKey(name)
	if _, err := l.exec(ctx, "BEGIN; SELECT pg_advisory_xact_lock_shared("+lock+"); SET LOCAL maintenance_work_mem = '256MB'"); err != nil {
		return 0, err
	}
	rn := &renames{}
	attach := func(bs []*indexBuild) error {
		var stmts []string
		for _, b := range bs {
			switch {
			case b.err != nil:
				l.note("%s left out: %v", b.what, b.err)
				l.leftOut[b.name] = true
			case b.attach != "":
				stmts = append(stmts, b.attach)
				rn.constraints = append(rn.constraints, b.rename)
			default:
				rn.indexes = append(rn.indexes, b.rename)
			}
		}
		if len(stmts) == 0 {
			return nil
		}
		if _, err := l.exec(ctx, strings.Join(stmts, "; ")); err != nil {
			return fmt.Errorf("attach the constraints' indexes: %w", err)
		}
		return nil
	}
	if err := attach(builds[1:sourceBuilds]); err != nil {
		return 0, err
	}
	source := l.buildObjects(ctx, objects{constraints: serial.constraints[:userSerial]})
	rn.constraints = append(rn.constraints, source.constraints...)
	l.st = l.state(rn) // names the source's objects alone
	if err := attach(builds[sourceBuilds:]); err != nil {
		return 0, err
	}
	user := l.buildObjects(ctx, objects{constraints: serial.constraints[userSerial:]})
	rn.constraints = append(rn.constraints, user.constraints...)
	l.rn = rn
	return time.Since(start), nil
}

// deferrable is the DEFERRABLE clause of a constraint's definition, for
// ADD CONSTRAINT … USING INDEX, which takes it after the index.
func deferrable(def string) string {
	for _, c := range []string{" DEFERRABLE INITIALLY DEFERRED", " DEFERRABLE"} {
		if strings.HasSuffix(def, c) {
			return c
		}
	}
	return ""
}

// buildAll runs builds, as many at once as the feed's IndexBuilds (across
// all its loads), each in its own transaction on a connection of its own;
// each build's error is in its err.
func (f *Feed) buildAll(ctx context.Context, builds []*indexBuild) {
	var wg sync.WaitGroup
	for _, b := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case f.builds <- struct{}{}:
			case <-ctx.Done():
				b.err = ctx.Err()
				return
			}
			defer func() { <-f.builds }()
			conn, err := f.acquire(ctx)
			if err != nil {
				b.err = err
				return
			}
			defer f.release(conn)
			t0 := time.Now()
			if _, err := conn.Exec(ctx, "BEGIN; SET LOCAL maintenance_work_mem = '256MB'; "+b.sql+"; COMMIT"); err != nil {
				b.err = pgconnect.SafeError(err)
				conn.Exec(context.Background(), "ROLLBACK")
				return
			}
			f.log.Debug("twin index built", "index", b.what, "seconds", time.Since(t0).Seconds())
		}()
	}
	wg.Wait()
}
