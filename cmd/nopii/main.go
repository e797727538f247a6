// Command nopii replicates PostgreSQL tables without their PII.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/nopii/nopii/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
