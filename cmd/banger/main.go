// Command banger runs Firecracker-style microVMs from verified kernel bundles
// and root filesystem images.
package main

import (
	"os"

	"github.com/thaloco/banger/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
