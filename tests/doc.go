// Package tests holds the multi-process tests of the walrus daemon: each
// builds the binaries once (internal/testcluster.Main), starts real walrus
// processes on free 127.0.0.1 ports and drives them over raw client-protocol
// frames. They are skipped under -short. `go test ./tests -soak` adds a
// longer load run (see -soak.duration).
package tests
