package testcluster

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// binDir is where Main built the binaries. It is written once, by Main,
// before any test runs, and only read afterwards.
var binDir string

// EnvBinDir names a directory holding prebuilt walrus and walrus-cli
// binaries; when set, Main uses them instead of building.
const EnvBinDir = "WALRUS_TEST_BIN_DIR"

// EnvRace set to 1 builds the binaries with -race (slower; finds races in
// the daemon under the multi-process tests).
const EnvRace = "WALRUS_TEST_RACE"

// Main is the TestMain body of a package that uses the harness:
//
//	func TestMain(m *testing.M) { os.Exit(testcluster.Main(m)) }
//
// Unless -short is set (the multi-process tests skip then), it builds
// ./cli/... of the module into a temporary directory once, runs the tests
// and removes the directory.
func Main(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	if dir := os.Getenv(EnvBinDir); dir != "" {
		binDir = dir
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "walrus-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// Build compiles ./cli/... of this module into dir (walrus, walrus-cli).
func Build(dir string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	if os.Getenv(EnvRace) == "1" {
		args = append(args, "-race")
	}
	args = append(args, "./cli/...")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), root, err, out.String())
	}
	return nil
}

// ModuleRoot is the directory of the module's go.mod, found with
// `go env GOMOD` from the working directory.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("go env GOMOD: not inside a module")
	}
	return filepath.Dir(gomod), nil
}

// WalrusBin is the path of the built walrus daemon. It fails the test when
// Main did not run (or ran with -short).
func WalrusBin(t testing.TB) string {
	t.Helper()
	return bin(t, "walrus")
}

// CLIBin is the path of the built walrus-cli.
func CLIBin(t testing.TB) string {
	t.Helper()
	return bin(t, "walrus-cli")
}

func bin(t testing.TB, name string) string {
	t.Helper()
	if binDir == "" {
		t.Fatal("testcluster: binaries not built; call testcluster.Main from TestMain and run without -short")
	}
	p := filepath.Join(binDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testcluster: %v", err)
	}
	return p
}

// BuildPackage compiles one main package of this module (a path relative
// to the module root, e.g. "./plugins/testplugin") into a temporary
// directory and returns the executable's path.
func BuildPackage(t testing.TB, pkg string) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testcluster: go build %s: %v\n%s", pkg, err, b)
	}
	return out
}
