package s3

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/logging"
)

// sdkLogger passes the SDK's log lines to slog. The client's log mode stays
// off, so these are warnings about configuration and checksums, never
// requests, which would carry signatures.
type sdkLogger struct{ log *slog.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, "aws sdk: "+fmt.Sprintf(format, v...))
}

// loggingRetryer logs each retry the SDK's retryer decides on, so that a
// flaky endpoint shows in the logs before it fails a run.
type loggingRetryer struct {
	aws.RetryerV2
	log *slog.Logger
}

func (r loggingRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, derr := r.RetryerV2.RetryDelay(attempt, err)
	if derr == nil {
		r.log.Warn("s3 request failed, retrying", "attempt", attempt, "max_attempts", r.MaxAttempts(),
			"delay", d.Round(time.Millisecond), "error", err.Error())
	}
	return d, derr
}
