package guestcopy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/thaloco/banger/internal/guest"
)

// mapMinSize is the smallest guest file whose data regions are looked up
// before reading it: below it, reading the holes costs less than asking.
const mapMinSize = 8 << 20

// mapScript prints a file's data regions, "start end" a line, found with
// lseek's SEEK_DATA (3) and SEEK_HOLE (4). It needs only perl's core
// (Debian's perl-base, which is essential), no modules.
const mapScript = `open(F, "<", $ARGV[0]) or exit 2; $s = -s F; $p = 0;
while ($p < $s) { $d = sysseek(F, $p, 3); last unless defined $d; $h = sysseek(F, $d, 4); exit 3 unless defined $h;
print 0+$d, " ", 0+$h, "\n"; $p = $h }`

// region is [start, end) of a file holding data.
type region struct{ start, end int64 }

// dataRegions asks the guest where name's data lies, so that holes need
// not cross the connection (SFTP has no way to tell). ok is false when it
// cannot tell (no perl, a filesystem without SEEK_DATA, a map too long):
// then the whole file is read.
func dataRegions(ctx context.Context, c *ssh.Client, name string, size int64) (regions []region, ok bool) {
	if c == nil {
		return nil, false
	}
	out := &headBuffer{max: 1 << 20}
	code, err := guest.Run(ctx, c, guest.QuoteArgs([]string{"perl", "-e", mapScript, "--", name}), nil, out, io.Discard)
	if err != nil || code != 0 || out.over {
		return nil, false
	}
	return parseRegions([]byte(out.String()), size)
}

// parseRegions reads mapScript's output. Anything amiss (the guest may
// print anything) means no map.
func parseRegions(out []byte, size int64) ([]region, bool) {
	var regions []region
	var last int64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		a, b, found := strings.Cut(sc.Text(), " ")
		start, err1 := strconv.ParseInt(a, 10, 64)
		end, err2 := strconv.ParseInt(b, 10, 64)
		if !found || err1 != nil || err2 != nil || start < last || end <= start {
			return nil, false
		}
		if start >= size {
			break
		}
		end = min(end, size)
		regions = append(regions, region{start, end})
		last = end
	}
	return regions, sc.Err() == nil
}

// nextRegion is srcFile.NextData over a map.
func nextRegion(regions []region, pos int64) (start, end int64, ok bool) {
	for _, r := range regions {
		if r.end > pos {
			return max(r.start, pos), r.end, true
		}
	}
	return 0, 0, false
}
