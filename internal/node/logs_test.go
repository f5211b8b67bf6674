package node

import (
	"fmt"
	"testing"
)

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		data string
		n    int
		want string
	}{
		{"a\nb\nc\n", 0, "a\nb\nc\n"},
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"a\nb\npartial", 1, "partial"},
		{"a\nb\npartial", 2, "b\npartial"},
		{"", 3, ""},
		{"\n\n", 1, "\n"},
	} {
		t.Run(fmt.Sprintf("%q/%d", tc.data, tc.n), func(t *testing.T) {
			if got := string(lastLines([]byte(tc.data), tc.n)); got != tc.want {
				t.Errorf("lastLines(%q, %d) = %q, want %q", tc.data, tc.n, got, tc.want)
			}
		})
	}
}
