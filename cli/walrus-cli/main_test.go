package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testcluster"
)

// These tests run the built walrus-cli binary, as a user would. TestMain
// builds it once; without -short it also builds the walrus daemon (for the
// cluster tests) into the same directory and hands it to testcluster. With
// WALRUS_TEST_BIN_DIR set, the binaries there are used instead.

var (
	binDir         string // holds walrus-cli and, without -short, walrus
	walrusBuildErr error  // why walrus could not be built (cluster tests fail with it)
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse()
	if dir := os.Getenv(testcluster.EnvBinDir); dir != "" {
		// prebuilt binaries, as testcluster allows
		binDir = dir
		return testcluster.Main(m)
	}
	dir, err := os.MkdirTemp("", "walrus-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := goBuild(dir, "./cli/walrus-cli"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir = dir
	if testing.Short() {
		return m.Run()
	}
	walrusBuildErr = goBuild(dir, "./cli/walrus")
	os.Setenv(testcluster.EnvBinDir, dir)
	return testcluster.Main(m)
}

func goBuild(dir, pkg string) error {
	root, err := testcluster.ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), pkg)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return nil
}

func cliPath() string { return filepath.Join(binDir, "walrus-cli") }

// needCluster skips under -short and fails when the daemon did not build.
func needCluster(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process test; skipped with -short")
	}
	if walrusBuildErr != nil {
		t.Fatalf("walrus daemon did not build: %v", walrusBuildErr)
	}
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", r.code, r.stdout, r.stderr)
}

type runOpts struct {
	stdin string
	env   []string
}

// cli runs walrus-cli with args and returns what it printed and its exit
// code. The environment is cleared of WALRUS_* so the user's settings do
// not leak in.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	return cliWith(t, runOpts{}, args...)
}

func cliWith(t *testing.T, o runOpts, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cliPath(), args...)
	cmd.Env = append(cleanEnv(), o.env...)
	cmd.Stdin = strings.NewReader(o.stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run walrus-cli %v: %v", args, err)
	}
	return r
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WALRUS_") && !strings.HasPrefix(kv, "NO_COLOR=") {
			env = append(env, kv)
		}
	}
	return env
}

func expect(t *testing.T, r result, code int, stdout string) {
	t.Helper()
	if r.code != code || r.stdout != stdout {
		_, file, line, _ := runtime.Caller(1)
		t.Fatalf("%s:%d: want exit %d stdout %q, got\n%s", filepath.Base(file), line, code, stdout, r)
	}
}
