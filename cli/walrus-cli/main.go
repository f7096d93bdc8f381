// Command walrus-cli is the client and admin tool of Walrus: an interactive
// shell, one-shot protocol commands, cluster status and a load generator.
// Everything lives in internal/clicmd; main only wires signals and exits.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/walrus-go/walrus/cli/walrus-cli/internal/clicmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := clicmd.Run(ctx, os.Args[1:], clicmd.IO{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
