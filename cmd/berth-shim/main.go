// Command berth-shim is the per-container monitor that berthd starts
// (`berth-shim /path/to/shim.json`, see runtime/shim/monitor), and the pod
// infra process (`berth-shim pause`, or the binary named `pause`, see
// runtime/shim/pause). Build it static: CGO_ENABLED=0.
package main

import (
	"os"
	"path"

	"github.com/berth-runtime/berth/runtime/shim/monitor"
	"github.com/berth-runtime/berth/runtime/shim/pause"
)

func main() {
	// The pause path comes first and touches nothing.
	if path.Base(os.Args[0]) == "pause" || (len(os.Args) == 2 && os.Args[1] == "pause") {
		os.Exit(pause.Run())
	}
	if len(os.Args) != 2 || os.Args[1] == "" || os.Args[1][0] == '-' {
		os.Stderr.WriteString("usage: berth-shim CONFIG.json\n       berth-shim pause\n")
		os.Exit(2)
	}
	os.Exit(monitor.Main(os.Args[1]))
}
