package netsetup

import (
	"strings"
	"testing"
)

func TestRuleWithComment(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string // joined args, "" for no match
	}{
		{`-A FORWARD -i bg-web -m comment --comment "banger:web" -j ACCEPT`, `-i bg-web -m comment --comment banger:web -j ACCEPT`},
		{`-A FORWARD -i bg-web -m comment --comment banger:web -j ACCEPT`, `-i bg-web -m comment --comment banger:web -j ACCEPT`},
		{`-A FORWARD -i bg-web -m comment --comment "banger:webby" -j ACCEPT`, ""},
		{`-A FORWARD -i keep0 -j ACCEPT`, ""},
		{`-A INPUT -m comment --comment "banger:web" -j ACCEPT`, ""},
		{`-P FORWARD DROP`, ""},
		{``, ""},
	} {
		t.Run(tc.line, func(t *testing.T) {
			args, ok := ruleWithComment(tc.line, "FORWARD", "banger:web")
			if got := strings.Join(args, " "); ok != (tc.want != "") || got != tc.want {
				t.Errorf("ruleWithComment(%q) = %q, %v; want %q", tc.line, got, ok, tc.want)
			}
		})
	}
}
