package testutil

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// buildTimeout bounds one `go build` or `go mod download`. A cold build of
// groupwire with empty module and build caches takes about 50 s on the
// project's 2-core machines; 10 minutes leaves room for a loaded one.
const buildTimeout = 10 * time.Minute

// MainPackage is the import path of the groupwire command.
const MainPackage = "github.com/groupwire/groupwire"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Groupwire builds the groupwire command once per test process and returns
// the binary's path. Call it before starting any per-command deadline: the
// first call can take a minute on a fresh machine. The binary is removed by
// Cleanup, which TestMain should call.
func Groupwire(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "groupwire-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "groupwire")
		_, buildErr = GoCommand("build", "-o", binPath, MainPackage)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Cleanup removes the binary Groupwire built, if any.
func Cleanup() {
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
}

// GoCommand runs the go command with args under buildTimeout and returns
// its standard output; an error carries the combined output.
func GoCommand(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	var stderr LockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %v: %w\n%s%s", args, err, out, stderr.String())
	}
	return out, nil
}

// ModuleDir returns the folder of module (at the version this module
// requires), downloading it first if the module cache lacks it. `go list
// -m -f {{.Dir}}` alone prints "" for a module not yet downloaded, which
// is what a fresh machine has.
func ModuleDir(t testing.TB, module string) string {
	t.Helper()
	out, err := GoCommand("mod", "download", "-json", module)
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("go mod download -json %s: %v\n%s", module, err, out)
	}
	if info.Error != "" || info.Dir == "" {
		t.Fatalf("go mod download %s: %q (dir %q)", module, info.Error, info.Dir)
	}
	return info.Dir
}

// RunGroupwire runs the groupwire binary with args, bounded by 30 s once
// the binary is built, and returns its combined output and error.
func RunGroupwire(t testing.TB, args ...string) (string, error) {
	t.Helper()
	bin := Groupwire(t) // before the deadline: a cold build takes a minute
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}

// HTTPGet fetches url asking for the media type accept ("" for any),
// bounded by 5 s, and returns the status code and body; a failed request
// fails the test.
func HTTPGet(t testing.TB, url, accept string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}
