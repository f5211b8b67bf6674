package cli

// shortFlags are the options whose flags are spelled by their shorthand
// in messages, as people type them.
var shortFlags = map[string]string{"publish": "-p"}

// optionFlag is the flag of a library's option (see option.Error): the
// libraries name their options as the flags do, without the dashes.
func optionFlag(o string) string {
	if f, ok := shortFlags[o]; ok {
		return f
	}
	return "--" + o
}
