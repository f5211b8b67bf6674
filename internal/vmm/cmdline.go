package vmm

import "strings"

// MergeCmdline puts a driver's default kernel arguments before the user's,
// leaving out each default whose key (the part before '=') the user sets
// themselves. The user's text is kept as written.
func MergeCmdline(defaults, user string) string {
	set := map[string]bool{}
	for _, f := range strings.Fields(user) {
		k, _, _ := strings.Cut(f, "=")
		set[k] = true
	}
	var args []string
	for _, f := range strings.Fields(defaults) {
		if k, _, _ := strings.Cut(f, "="); !set[k] {
			args = append(args, f)
		}
	}
	if user = strings.TrimSpace(user); user != "" {
		args = append(args, user)
	}
	return strings.Join(args, " ")
}
