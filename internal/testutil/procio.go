package testutil

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// ProcIO returns one counter of /proc/self/io: "rchar" (bytes read(2) and
// its kin passed to this process), "syscw" (write(2)-family calls), and
// so on. Tests use it to check what the kernel did on their behalf:
// splice passes no byte through read(2), a batched relay makes few
// writes. Without /proc/self/io (not Linux) the test is skipped.
func ProcIO(t testing.TB, key string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+": "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("/proc/self/io %s: %v", key, err)
			}
			return n
		}
	}
	t.Fatalf("/proc/self/io has no %s line", key)
	return 0
}
