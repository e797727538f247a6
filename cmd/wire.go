package cmd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/feeds/files"
	"github.com/nopii/nopii/feeds/lake"
	"github.com/nopii/nopii/feeds/s3"
	"github.com/nopii/nopii/feeds/twin"
	"github.com/nopii/nopii/internal/pgconnect"
	"github.com/nopii/nopii/source/postgres"
)

// The feeds serve data-subject requests.
var (
	_ agent.SubjectFeed = (*twin.Feed)(nil)
	_ agent.SubjectFeed = (*lake.Feed)(nil)
)

// newRunner wires the adapters into an agent.Runner.
func newRunner(log *slog.Logger, obs agent.Observer) *agent.Runner {
	return &agent.Runner{
		Logger:   log,
		Observer: obs,
		Retry:    agent.DefaultRetry(pgconnect.Lost),
		OpenSource: func(ctx context.Context, in *config.Input, readers int) (nopii.Source, error) {
			return postgres.Open(ctx, in.DSN.Reveal(), postgres.Options{Name: in.Name, Readers: readers, Logger: log, SchemaPrefix: in.TargetSchemaPrefix})
		},
		OpenFeed: func(ctx context.Context, wf *config.Workflow, f *config.Feed) (nopii.Feed, error) {
			return openFeed(ctx, wf, f, log)
		},
		OpenSnapshot: func(ctx context.Context, in *config.Input, readers int, snapshot string) (nopii.Source, error) {
			return postgres.Open(ctx, in.DSN.Reveal(), postgres.Options{Name: in.Name, Readers: readers, Logger: log, Snapshot: snapshot, SchemaPrefix: in.TargetSchemaPrefix})
		},
		OpenReplication: func(ctx context.Context, wf *config.Workflow, in *config.Input) (agent.Replicator, error) {
			return postgres.OpenReplication(ctx, in.DSN.Reveal(), postgres.ReplicationOptions{Name: in.Name,
				Slot: postgres.ReplicationName(wf.Name, in.Name), Logger: log})
		},
	}
}

// openFeed is the one switch from configuration to feed adapters.
func openFeed(ctx context.Context, wf *config.Workflow, f *config.Feed, log *slog.Logger) (nopii.Feed, error) {
	workflow := wf.Name
	lease, err := leaseTTL()
	if err != nil {
		return nil, err
	}
	opts := lake.Options{Workflow: workflow, Format: f.Format, Compression: f.Compression,
		PartSize: f.PartSize, Retain: f.Retain, Logger: log, Kind: f.Type, LeaseTTL: lease}
	switch f.Type {
	case config.FeedTwin:
		// Index builds share the workflow's parallelism with the copies.
		builds := wf.Parallelism
		if builds <= 0 {
			builds = agent.DefaultParallelism()
		}
		return twin.Open(ctx, f.DSN.Reveal(), twin.Options{Logger: log, DataOnly: f.Schema == config.SchemaDataOnly,
			LockTimeout: f.LockTimeout, IndexBuilds: builds})
	case config.FeedS3:
		store, err := s3.NewStore(ctx, s3.Options{Bucket: f.Bucket, Prefix: f.Prefix, Region: f.Region, Endpoint: f.Endpoint,
			SSE: f.SSE, SSEKMSKeyID: f.SSEKMSKeyID, AccessKeyID: f.AccessKeyID, SecretAccessKey: f.SecretAccessKey.Reveal(),
			Logger: log.With("workflow", workflow)})
		if err != nil {
			return nil, fmt.Errorf("%s: s3 feed: %w", f.Pos, err)
		}
		return lake.New(store, opts), nil
	case config.FeedFiles:
		feed, err := files.Open(f.Path, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: files feed: %w", f.Pos, err)
		}
		return feed, nil
	}
	return nil, fmt.Errorf("%s: unknown feed type %q", f.Pos, f.Type)
}

// envLockLease names the environment variable that sets how long a lake's
// run lock outlives a run that stopped renewing it (a crashed run): a
// duration, default lake.DefaultLeaseTTL (docs/reliability.md).
const envLockLease = "NOPII_LOCK_LEASE"

func leaseTTL() (time.Duration, error) {
	v := os.Getenv(envLockLease)
	if v == "" {
		return 0, nil
	}
	d, err := config.ParseDuration(v)
	if err != nil || d < time.Second {
		return 0, usageError{fmt.Errorf("$%s=%q is not a duration of a second or more", envLockLease, v), "unset it, or set it to e.g. 2m"}
	}
	return d, nil
}
