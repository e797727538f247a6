package cmd

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/agent"
	"github.com/nopii/nopii/config"
	"github.com/nopii/nopii/feeds/twin"
	"github.com/nopii/nopii/source/postgres"
)

// newRunner wires the adapters into an agent.Runner.
func newRunner(log *slog.Logger, obs agent.Observer) *agent.Runner {
	return &agent.Runner{
		Logger:   log,
		Observer: obs,
		OpenSource: func(ctx context.Context, in *config.Input, readers int) (nopii.Source, error) {
			return postgres.Open(ctx, in.DSN.Reveal(), postgres.Options{Name: in.Name, Readers: readers, Logger: log})
		},
		OpenFeed: func(ctx context.Context, wf *config.Workflow, f *config.Feed) (nopii.Feed, error) {
			return openFeed(ctx, f, log)
		},
	}
}

func openFeed(ctx context.Context, f *config.Feed, log *slog.Logger) (nopii.Feed, error) {
	switch f.Type {
	case config.FeedTwin:
		return twin.Open(ctx, f.DSN.Reveal(), twin.Options{Logger: log})
	default:
		return nil, fmt.Errorf("%s: feeds of type %s are not available in this version", f.Pos, f.Type)
	}
}
