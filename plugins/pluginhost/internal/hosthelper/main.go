// Command hosthelper is a stand-in node for the orphan test: it opens the
// plugin given as its only argument through pluginhost, prints
// "pid <plugin pid>" on stdout, and blocks until it is killed. The test
// SIGKILLs it and checks the plugin does not outlive it.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/walrus-go/walrus/plugins/pluginhost"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: hosthelper PLUGIN")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := pluginhost.Open(ctx, pluginhost.Config{Path: os.Args[1]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("pid %d\n", store.(*pluginhost.Store).PID())
	// Bounded: the test kills us long before; never linger past it.
	time.Sleep(5 * time.Minute)
	_ = store.Close()
}
