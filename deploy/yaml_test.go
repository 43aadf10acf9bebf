package deploy

import (
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
)

// TestEveryYAMLFileParses decodes every document of every YAML file under
// deploy/.
func TestEveryYAMLFileParses(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk deploy/: %v", err)
	}
	for _, want := range []string{"compose/docker-compose.yml", "compose/cluster.yaml", "kubernetes/statefulset.yaml", "systemd/cluster.yaml"} {
		if !slices.Contains(files, filepath.FromSlash(want)) {
			t.Errorf("%s not found among the YAML files %v", want, files)
		}
	}
	for _, f := range files {
		docs := decodeAll[map[string]any](t, f)
		if len(docs) == 0 {
			t.Errorf("%s: no YAML document", f)
		}
		for i, d := range docs {
			if len(d) == 0 {
				t.Errorf("%s: document %d is empty", f, i+1)
			}
		}
	}
}
