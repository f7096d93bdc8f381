//go:build !linux

package pluginhost

import "os/exec"

// setParentDeathSignal has no portable equivalent off Linux; there the
// plugin relies on pluginsdk.Serve's parent watch alone.
func setParentDeathSignal(*exec.Cmd) {}
