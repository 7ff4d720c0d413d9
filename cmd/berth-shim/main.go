// Command berth-shim is the per-container monitor that berthd starts
// (`berth-shim /path/to/shim.json`, see runtime/shim/monitor), and the pod
// infra process (`berth-shim pause`, or the binary named `pause`, see
// runtime/shim/pause). Build it static: CGO_ENABLED=0.
package main

import (
	"os"
	"strings"

	"github.com/berth-runtime/berth/runtime/shim/monitor"
	"github.com/berth-runtime/berth/runtime/shim/pause"
)

func main() {
	// The pause path comes first and touches nothing.
	if base(os.Args[0]) == "pause" || (len(os.Args) == 2 && os.Args[1] == "pause") {
		os.Exit(pause.Run())
	}
	if len(os.Args) != 2 || os.Args[1] == "" || os.Args[1][0] == '-' {
		os.Stderr.WriteString("usage: berth-shim CONFIG.json\n       berth-shim pause\n")
		os.Exit(2)
	}
	os.Exit(monitor.Main(os.Args[1]))
}

// base is filepath.Base for the name the binary was run as.
func base(p string) string {
	p = strings.TrimRight(p, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
}
