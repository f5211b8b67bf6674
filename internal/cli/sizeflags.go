package cli

import (
	"fmt"

	"github.com/thaloco/banger/internal/ext4"
	"github.com/thaloco/banger/internal/vm"
)

// sizeValue is a byte-size flag (--disk-size, --size), parsed when given
// ("4G", "512M", "1.5GiB", a number of bytes), so a bad one is a usage
// error before anything runs. 0 means not given.
type sizeValue struct{ p *int64 }

func (v sizeValue) Set(s string) error {
	n, err := ext4.ParseSize(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

func (v sizeValue) String() string {
	if v.p == nil || *v.p == 0 {
		return ""
	}
	return fmt.Sprint(*v.p)
}

func (sizeValue) Type() string { return "SIZE" }

// memoryValue is --memory in MiB, parsed when given ("512M", "2G", or a
// plain number of MiB).
type memoryValue struct{ p *int }

func (v memoryValue) Set(s string) error {
	n, err := vm.ParseMemory(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

func (v memoryValue) String() string {
	if v.p == nil {
		return ""
	}
	return fmt.Sprintf("%dM", *v.p)
}

func (memoryValue) Type() string { return "SIZE" }
