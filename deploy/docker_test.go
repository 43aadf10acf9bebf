package deploy

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestDockerfile checks the image recipe against the brief it must keep:
// FROM scratch around the binary that build-image.sh writes (and that
// .dockerignore lets into the build context), a non-root user, and
// `groupwire run` by default.
func TestDockerfile(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var lines []string
	for _, l := range strings.Split(read("../Dockerfile"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	for _, want := range []string{
		"FROM scratch",
		"COPY deploy/.build/groupwire /groupwire",
		"USER 65532:65532",
		`ENTRYPOINT ["/groupwire"]`,
		`CMD ["run"]`,
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if n := len(slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return !strings.HasPrefix(l, "FROM ") })); n != 1 {
		t.Errorf("Dockerfile has %d FROM lines, want 1 (nothing can be pulled)", n)
	}
	ignore := strings.Split(read("../.dockerignore"), "\n")
	if !slices.Contains(ignore, "!deploy/.build/groupwire") || !slices.Contains(ignore, "*") {
		t.Errorf(".dockerignore must exclude everything but deploy/.build/groupwire, got %q", ignore)
	}
	build := read("build-image.sh")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-s -w -X main.version=`, "-o deploy/.build/groupwire"} {
		if !strings.Contains(build, want) {
			t.Errorf("build-image.sh lacks %q", want)
		}
	}
}
