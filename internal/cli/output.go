package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// The output contract: --json prints a view struct of this package
// (documented in docs/json.md) with writeJSON and its times as jsonTime;
// tables go through newTable, show commands through newFields, and an
// empty list is one printEmpty line.

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// jsonTime is how every view holds a time: RFC 3339 in UTC to the
// second, "" when unset (and left out by omitempty).
func jsonTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// table writes aligned columns; call Row for each line and Flush at the end.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.Row(headers...)
	return t
}

func (t *table) Row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }

func (t *table) Flush() error { return t.tw.Flush() }

// fields is the layout of every show command: one "key: value" row per
// field, the values aligned; a field without a value is left out.
type fields struct{ tw *tabwriter.Writer }

func newFields(w io.Writer) *fields {
	return &fields{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
}

// Add prints key: value unless value is "".
func (f *fields) Add(key, value string) {
	if value != "" {
		fmt.Fprintf(f.tw, "%s:\t%s\n", key, value)
	}
}

// AddTime prints key: t as humanTime unless t is zero.
func (f *fields) AddTime(key string, t time.Time) {
	if !t.IsZero() {
		f.Add(key, humanTime(t))
	}
}

func (f *fields) Flush() error { return f.tw.Flush() }

// printEmpty is what a list command prints when there is nothing to
// list: "no images", with a hint saying how to make one when there is
// one to give.
func printEmpty(w io.Writer, things, hint string) error {
	line := "no " + things
	if hint != "" {
		line += " (hint: " + hint + ")"
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

// humanTime formats t for tables in the local time zone, minute precision.
func humanTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}
