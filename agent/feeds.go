package agent

import (
	"context"
	"fmt"

	"github.com/nopii/nopii"
	"github.com/nopii/nopii/config"
)

// openFeeds opens every feed of a workflow, in order. On error the feeds
// already open are closed.
func (r *Runner) openFeeds(ctx context.Context, wf *config.Workflow) ([]nopii.Feed, error) {
	feeds := make([]nopii.Feed, 0, len(wf.Feeds))
	for i := range wf.Feeds {
		f, err := r.OpenFeed(ctx, wf, &wf.Feeds[i])
		if err != nil {
			closeFeeds(feeds)
			return nil, fmt.Errorf("open %s feed: %w", wf.Feeds[i].Type, err)
		}
		feeds = append(feeds, f)
	}
	return feeds, nil
}

func closeFeeds(feeds []nopii.Feed) {
	for _, f := range feeds {
		f.Close()
	}
}
