package image

// Config is how a built image's OCI config says to run it, as recorded
// from the image: what Kubernetes falls back on when a container does not
// set its command, arguments, environment or working directory.
type Config struct {
	// Entrypoint and Cmd: the program and its default arguments. A
	// container's command replaces Entrypoint (and then Cmd is dropped),
	// its args replace Cmd.
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	// Env holds NAME=VALUE entries, in the image's order.
	Env []string `json:"env,omitempty"`
	// WorkingDir is the directory the program starts in ("" the root).
	WorkingDir string `json:"working_dir,omitempty"`
	// User is the image's user: a name or UID, optionally :group.
	User string `json:"user,omitempty"`
}

// IsZero says whether c records nothing.
func (c *Config) IsZero() bool {
	return c == nil || len(c.Entrypoint) == 0 && len(c.Cmd) == 0 && len(c.Env) == 0 && c.WorkingDir == "" && c.User == ""
}
