package mongossl

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestGenerated: mongov1's generated files are what go generate makes of
// this package's files now; a change here that was not generated into
// mongov1 fails, naming the file.
func TestGenerated(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("go", "run", "./internal/v1gen", "-o", dir).CombinedOutput(); err != nil {
		t.Fatalf("internal/v1gen: %v\n%s", err, out)
	}
	want := readGo(t, dir)
	got := readGo(t, "mongov1")
	generated := regexp.MustCompile(`^// Code generated .* DO NOT EDIT\.\r?\n`)
	for name, b := range want {
		if !bytes.Equal(bytes.ReplaceAll(got[name], []byte("\r\n"), []byte("\n")), b) {
			t.Errorf("mongov1/%s is stale: run go generate ./mongossl", name)
		}
	}
	for name, b := range got {
		if _, ok := want[name]; !ok && generated.Match(b) {
			t.Errorf("mongov1/%s is generated from nothing: run go generate ./mongossl", name)
		}
	}
}

// readGo returns the .go files in dir by name.
func readGo(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		if files[filepath.Base(p)], err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	return files
}
