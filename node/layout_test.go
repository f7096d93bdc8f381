package node_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/walrus-go/walrus/node"

// domain packages own one concern each and never import one another;
// their subpackages belong to them alone.
var domain = []string{"cluster", "segment", "router", "cursor", "rollover"}

type goPkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listNodePackages(t *testing.T) []goPkg {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps=false", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []goPkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p goPkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages under node/", len(pkgs))
	}
	return pkgs
}

// owner is the domain package p belongs to ("" for none).
func owner(path string) string {
	rel, ok := strings.CutPrefix(path, mod+"/")
	if !ok {
		return ""
	}
	top, _, _ := strings.Cut(rel, "/")
	if slices.Contains(domain, top) {
		return top
	}
	return ""
}

// TestImportRule enforces the layout of docs/architecture.md: domain
// packages depend only on leaves, never on each other (not even
// transitively) nor on the composition root; leaves depend on no domain
// package; only the composition root and nodetest wire domain packages.
func TestImportRule(t *testing.T) {
	for _, p := range listNodePackages(t) {
		own := owner(p.ImportPath)
		for _, dep := range p.Deps {
			dOwn := owner(dep)
			switch {
			case dep == mod && p.ImportPath != mod+"/nodetest":
				t.Errorf("%s depends on the composition root %s", p.ImportPath, mod)
			case dOwn == "":
			case own != "" && dOwn != own:
				t.Errorf("domain package %s depends on another domain package %s", p.ImportPath, dep)
			case own == "" && p.ImportPath != mod && p.ImportPath != mod+"/nodetest":
				t.Errorf("leaf package %s depends on domain package %s", p.ImportPath, dep)
			}
		}
		// A domain package's subpackages are its own business.
		for _, imp := range p.Imports {
			if iOwn := owner(imp); iOwn != "" && imp != mod+"/"+iOwn && own != iOwn {
				t.Errorf("%s imports %s, which belongs to %s", p.ImportPath, imp, iOwn)
			}
		}
	}
}

// TestPackageSizes keeps the split from growing back into one object: no
// package of node/ over ~1,500 lines of non-test Go, no file over ~600.
func TestPackageSizes(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-f", `{{.Dir}}{{range .GoFiles}} {{.}}{{end}}`, "./...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		dir, files := fields[0], fields[1:]
		total := 0
		for _, f := range files {
			n := countLines(t, dir+"/"+f)
			if n > 600 && !strings.HasSuffix(f, ".pb.go") {
				t.Errorf("%s/%s has %d lines (limit ~600)", dir, f, n)
			}
			total += n
		}
		if total > 1600 && !strings.Contains(dir, "/proto") {
			t.Errorf("%s has %d lines of Go (limit ~1,500)", dir, total)
		}
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}
