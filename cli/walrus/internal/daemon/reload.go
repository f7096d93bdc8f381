package daemon

import (
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// reloadOnHUP calls reload on every SIGHUP (so the default action, which
// ends the process, never applies while the node runs) until the returned
// stop is called; stop waits for its goroutine. A failed reload keeps the
// certificates in use and is logged with the file to fix.
func reloadOnHUP(reload func() error, logger *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				if err := reload(); err != nil {
					logger.Error("SIGHUP: TLS reload failed; the previous certificates stay in use", "err", err)
					continue
				}
				logger.Info("SIGHUP: TLS files reloaded")
			}
		}
	})
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}
