package vm

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// ReadPublicKeys returns the public key lines of file (such as
// ~/.ssh/id_ed25519.pub), for CreateOptions.SSHKeys: its lines that are
// neither empty nor comments. A file without one is an error.
func ReadPublicKeys(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var keys []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no public key (hint: give the .pub file, e.g. ~/.ssh/id_ed25519.pub)", file)
	}
	return keys, nil
}
