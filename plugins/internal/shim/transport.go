package shim

import "google.golang.org/grpc"

// windowBytes is the fixed HTTP/2 flow-control window of the plugin
// connection, per stream and per connection. Setting it turns off gRPC's
// bandwidth-delay estimator, whose PINGs wake the other process for no gain
// on a local Unix socket (an A/B on the shared 2-core box was within noise,
// single-entry appends slightly faster), and 4 MiB lets several 1 MiB
// chunks be in flight without waiting for a window update.
const windowBytes = 4 << 20

// DialOptions are the host side's gRPC options for the plugin connection.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithInitialWindowSize(windowBytes),
		grpc.WithInitialConnWindowSize(windowBytes),
	}
}

// ServerOptions are the plugin side's gRPC server options (pluginsdk).
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InitialWindowSize(windowBytes),
		grpc.InitialConnWindowSize(windowBytes),
	}
}
