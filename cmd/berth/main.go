// Command berth is berth's docker-style CLI: docker's commands and flags,
// `berth compose`, and berth's own commands, as a client of berthd's
// Docker Engine API socket.
package main

import (
	"os"

	"github.com/berth-runtime/berth/compat/cli"
)

func main() {
	os.Exit(cli.Main())
}
