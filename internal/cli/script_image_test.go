package cli

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestImageScripts runs the image command scripts against real ext4
// files, a real OCI registry on 127.0.0.1 and real mkfs.ext4/debugfs.
func TestImageScripts(t *testing.T) {
	testscript.Run(t, scriptParams(t, "image_*.txtar", imageScriptCmds()))
}

func imageScriptCmds() map[string]func(*testscript.TestScript, bool, []string) {
	return map[string]func(*testscript.TestScript, bool, []string){}
}
