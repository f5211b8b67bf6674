package logtail

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	in := "first\n\n  \x1b[1;31mred\x1b[0m  \r\nbell\x07\n\nlast\n"
	if got, want := Lines(in, 3), []string{"red", "bell", "last"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Lines = %q, want %q", got, want)
	}
	if got := Quote(in, 2); got != "bell; last" {
		t.Fatalf("Quote = %q", got)
	}
	if got := Lines("\n \n", 5); len(got) != 0 {
		t.Fatalf("blank input gave %q", got)
	}
}

func TestFileFromOffset(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	old := "old run\n"
	if err := os.WriteFile(p, []byte(old+strings.Repeat("x\n", 40000)+"panic: boom\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := File(p, int64(len(old)), 2)
	if !reflect.DeepEqual(got, []string{"x", "panic: boom"}) {
		t.Fatalf("File = %q", got)
	}
	if got := File(p, 1<<30, 2); got != nil {
		t.Fatalf("offset past the end gave %q", got)
	}
	if got := File(filepath.Join(t.TempDir(), "missing"), 0, 2); got != nil {
		t.Fatalf("missing file gave %q", got)
	}
	if got := ReadFrom(p, 0, 12); got != "panic: boom\n" {
		t.Fatalf("ReadFrom capped = %q", got)
	}
}
