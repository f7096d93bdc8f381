// Package pluginsdk is what a third-party storage backend imports to run as
// a Walrus plugin. In the backend's main, open the store and hand it to
// Serve:
//
//	func main() {
//		logger := pluginsdk.Logger("mystore")
//		store, err := mystore.Open(os.Getenv("MYSTORE_DIR"), logger)
//		if err != nil {
//			logger.Error("open store", "err", err)
//			os.Exit(1)
//		}
//		pluginsdk.Serve(store)
//	}
//
// Serve speaks the handshake (magic cookie and protocol version, see
// Handshake), serves the store over gRPC through hashicorp/go-plugin, and
// returns after the host shut the plugin down or its parent process died
// (SIGTERM counts once the parent is gone, or after a 10 s grace); the
// store is closed before Serve returns.
//
// Stdout belongs to the handshake: a plugin must log to stderr only.
// Logger returns a *slog.Logger writing hclog-style JSON lines (@level,
// @message, @timestamp) to stderr, which the host re-levels into the node's
// log tagged with the plugin's name.
//
// The durability contract: the plugin owns its data. An Append the plugin
// acknowledged must survive the plugin process being killed (SIGKILL) at
// any instant, because the host restarts a crashed plugin and carries on
// as if nothing was lost. See plugins/README.md.
//
// Imports: engine, plugins/internal/shim, go-plugin, grpc, hclog — never
// badger, raft or viper (a go list -deps test guards this), so a plugin
// binary stays small.
package pluginsdk
