// Command walrus is the Walrus node daemon. See configs/README.md for its
// flags, environment variables and YAML keys.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/walrus-go/walrus/cli/walrus/internal/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal starts the clean shutdown, restore the default
	// handling so a second Ctrl-C kills a shutdown that hangs.
	context.AfterFunc(ctx, stop)
	err := daemon.NewCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "walrus:", err)
		os.Exit(1)
	}
}
