package outhook_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryPackageChecksLeaks: every package with tests runs them under
// goleak (a TestMain calling goleak.VerifyTestMain), so that no goroutine
// outlives its tests anywhere (issue 7, item 7). A package that starts no
// goroutine still gets the check: it costs nothing and keeps a later
// change honest.
func TestEveryPackageChecksLeaks(t *testing.T) {
	tested := map[string]bool{}
	checked := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		tested[dir] = true
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(src), "goleak.VerifyTestMain(") {
			checked[dir] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tested) < 20 {
		t.Fatalf("found only %d packages with tests: is the walk starting at the module root?", len(tested))
	}
	for dir := range tested {
		if !checked[dir] {
			t.Errorf("package %s has tests but no TestMain calling goleak.VerifyTestMain", dir)
		}
	}
}
