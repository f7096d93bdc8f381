//go:build linux

package pluginhost

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal asks the kernel to send the plugin SIGTERM when the
// node dies, even by SIGKILL, so it never outlives the node.
// pluginsdk.Serve treats SIGTERM as "close the store and exit".
func setParentDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
