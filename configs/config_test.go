package configs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/walrus-go/walrus/node/acl"
	"github.com/walrus-go/walrus/node/auth"
)

func writeYAML(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "walrus.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("walrus", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestDefaultsLoadAndValidate(t *testing.T) {
	c, err := Load("", newFlags(t))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Kafka.Port = NoConfigKafkaPort // on only when there is no config file
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Load with nothing set:\n got %+v\nwant %+v", c, want)
	}
	if c.Client.Port != 8080 || c.Raft.Port != 6000 || c.DataDir != "./data" || c.Storage.Backend != "mmap" {
		t.Fatalf("embedded defaults changed: %+v", c)
	}
}

func TestDefaultIsFresh(t *testing.T) {
	a := Default()
	a.Join = append(a.Join, "x:1")
	a.Storage.Plugin.Args = append(a.Storage.Plugin.Args, "y")
	if b := Default(); len(b.Join) != 0 || len(b.Storage.Plugin.Args) != 0 {
		t.Fatal("Default shares slices between calls")
	}
}

// Every sample file in this directory loads, validates and says what its
// comments promise.
func TestSampleFiles(t *testing.T) {
	tests := []struct {
		file               string
		id                 uint64
		client, raft, http int
		join               []string
	}{
		{"single.yaml", 1, 8080, 6000, 9100, []string{}},
		{"node1.yaml", 1, 9091, 6001, 9101, []string{}},
		{"node2.yaml", 2, 9092, 6002, 9102, []string{"127.0.0.1:6001"}},
		{"node3.yaml", 3, 9093, 6003, 9103, []string{"127.0.0.1:6001"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := Load(tt.file, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[uint64]int{1: 9192, 2: 9193, 3: 9194}[tt.id]; tt.file == "single.yaml" && c.Kafka.Port != NoConfigKafkaPort || tt.file != "single.yaml" && c.Kafka.Port != want {
				t.Fatalf("kafka.port %d", c.Kafka.Port)
			}
			if c.NodeID != tt.id || c.Client.Port != tt.client || c.Raft.Port != tt.raft || c.HTTP.Port != tt.http {
				t.Fatalf("got id=%d client=%d raft=%d http=%d", c.NodeID, c.Client.Port, c.Raft.Port, c.HTTP.Port)
			}
			if !reflect.DeepEqual(c.Join, tt.join) {
				t.Fatalf("join = %q, want %q", c.Join, tt.join)
			}
			if c.File != tt.file {
				t.Fatalf("File = %q", c.File)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	file := writeYAML(t, `
node_id: 2
data_dir: /from/file
max_segment_entries: 111
monitor_check_ms: 1111
raft:
  port: 7001
client:
  port: 7002
log:
  level: warn
`)
	t.Setenv("WALRUS_DATA_DIR", "/from/env")
	t.Setenv("WALRUS_MAX_SEGMENT_ENTRIES", "222")
	t.Setenv("WALRUS_MONITOR_CHECK_MS", "250")
	t.Setenv("WALRUS_RAFT_PORT", "7101")
	t.Setenv("WALRUS_CLIENT_HOST", "127.0.0.2")
	t.Setenv("WALRUS_STORAGE_BACKEND", "badger")
	t.Setenv("WALRUS_JOIN", "127.0.0.1:1,127.0.0.1:2")

	c, err := Load(file, newFlags(t, "--raft-port", "7201", "--log-level", "debug"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"node_id (file > default)", c.NodeID, uint64(2)},
		{"client.port (file > default)", c.Client.Port, 7002},
		{"data_dir (env > file)", c.DataDir, "/from/env"},
		{"max_segment_entries (seed env > file)", c.MaxSegmentEntries, uint64(222)},
		{"monitor_check_ms (seed env > file)", c.MonitorCheckMS, int64(250)},
		{"client.host (nested env > default)", c.Client.Host, "127.0.0.2"},
		{"storage.backend (nested env)", c.Storage.Backend, "badger"},
		{"raft.port (flag > env > file)", c.Raft.Port, 7201},
		{"log.level (flag > file)", c.Log.Level, "debug"},
		{"http.port (default)", c.HTTP.Port, 0},
		{"join (env list)", c.Join, []string{"127.0.0.1:1", "127.0.0.1:2"}},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s: got %v, want %v", ck.key, ck.got, ck.want)
		}
	}
	if got := c.MonitorInterval().Milliseconds(); got != 250 {
		t.Errorf("MonitorInterval = %dms", got)
	}
}

// A flag left at its default must not override the file or the environment.
func TestUnsetFlagDoesNotOverride(t *testing.T) {
	file := writeYAML(t, "client:\n  port: 9999\n")
	t.Setenv("WALRUS_RAFT_PORT", "6999")
	c, err := Load(file, newFlags(t, "--node-id", "3", "--join", "127.0.0.1:6001", "--join", "127.0.0.1:6002"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Client.Port != 9999 || c.Raft.Port != 6999 || c.NodeID != 3 {
		t.Fatalf("got client=%d raft=%d id=%d", c.Client.Port, c.Raft.Port, c.NodeID)
	}
	if want := []string{"127.0.0.1:6001", "127.0.0.1:6002"}; !reflect.DeepEqual(c.Join, want) {
		t.Fatalf("join = %q", c.Join)
	}
}

func TestUnknownKeyFails(t *testing.T) {
	tests := []struct{ name, yaml, key string }{
		{"top level", "node_idd: 1\n", "node_idd"},
		{"nested", "raft:\n  prot: 6001\n", "prot"},
		{"deep", "storage:\n  mmap:\n    segment_bytes: 5\n", "segment_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeYAML(t, tt.yaml), nil)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("err = %v, want ErrInvalid naming %q", err, tt.key)
			}
		})
	}
}

func TestBadFiles(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil); !errors.Is(err, ErrInvalid) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := Load(writeYAML(t, "raft: [1, 2\n"), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("broken YAML: %v", err)
	}
	_, err := Load(writeYAML(t, "client:\n  port: ninety\n"), nil)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "port") {
		t.Fatalf("wrong type: %v", err)
	}
	t.Setenv("WALRUS_NODE_ID", "-4")
	if _, err := Load("", nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "node_id") {
		t.Fatalf("bad env: %v", err)
	}
}

func TestValidateNamesEveryBadKey(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Config)
		wants []string
	}{
		{"node id zero", func(c *Config) { c.NodeID = 0 }, []string{"node_id = 0", ">= 1"}},
		{"empty data dir", func(c *Config) { c.DataDir = " " }, []string{"data_dir"}},
		{"bad join", func(c *Config) { c.Join = []string{"127.0.0.1:6001", "nope"} }, []string{`join[1] = "nope"`, "host:port"}},
		{"join port range", func(c *Config) { c.Join = []string{"h:70000"} }, []string{"join[0]"}},
		{"segment entries", func(c *Config) { c.MaxSegmentEntries = 0 }, []string{"max_segment_entries = 0", "1.."}},
		{"monitor", func(c *Config) { c.MonitorCheckMS = 5 }, []string{"monitor_check_ms = 5", "10..3600000"}},
		{"lease", func(c *Config) { c.LeaseSyncMS = 0 }, []string{"lease_sync_ms = 0"}},
		{"failure timeout", func(c *Config) { c.FailureTimeoutMS = 1 }, []string{"failure_timeout_ms = 1"}},
		{"replication", func(c *Config) { c.ReplicationFactor = 9 }, []string{"replication_factor = 9", "1..7"}},
		{"quorum", func(c *Config) { c.ReplicationFactor = 2; c.AckQuorum = 3 }, []string{"ack_quorum = 3", "1..replication_factor (2)"}},
		{"unrecoverable quorum", func(c *Config) { c.ReplicationFactor = 3; c.AckQuorum = 1 }, []string{"ack_quorum = 1", "must be >= 2 when replication_factor is 3"}},
		{"raft port", func(c *Config) { c.Raft.Port = 70000 }, []string{"raft.port = 70000", "1..65535"}},
		{"raft host", func(c *Config) { c.Raft.Host = "" }, []string{`raft.host = ""`}},
		{"host with port", func(c *Config) { c.Client.Host = "127.0.0.1:80" }, []string{"client.host", "without a port"}},
		{"client port", func(c *Config) { c.Client.Port = 0 }, []string{"client.port = 0"}},
		{"same ports", func(c *Config) { c.Client.Port = c.Raft.Port }, []string{"client.port", "differ from raft.port"}},
		{"http port clash", func(c *Config) { c.HTTP.Port = c.Client.Port }, []string{"http.port", "differ"}},
		{"frame", func(c *Config) { c.Client.MaxFrameBytes = 10 }, []string{"client.max_frame_bytes = 10"}},
		{"backend", func(c *Config) { c.Storage.Backend = "rocks" }, []string{`storage.backend = "rocks"`, "mmap, badger, plugin"}},
		{"durability", func(c *Config) { c.Storage.Durability = "sometimes" }, []string{"storage.durability", "none, interval, always"}},
		{"sync interval", func(c *Config) { c.Storage.SyncIntervalMS = 0 }, []string{"storage.sync_interval_ms = 0"}},
		{"mmap file", func(c *Config) { c.Storage.Mmap.SegmentFileBytes = 12 }, []string{"storage.mmap.segment_file_bytes = 12"}},
		{"mmap mapped", func(c *Config) { c.Storage.Mmap.MaxMappedSegments = -1 }, []string{"storage.mmap.max_mapped_segments = -1"}},
		{"mmap open", func(c *Config) { c.Storage.Mmap.MaxOpenSegments = 1 << 21 }, []string{"storage.mmap.max_open_segments = 2097152"}},
		{"plugin path", func(c *Config) { c.Storage.Backend = "plugin" }, []string{"storage.plugin.path", "when storage.backend is plugin"}},
		{"plugin sha", func(c *Config) { c.Storage.Plugin.SHA256 = "abc" }, []string{"storage.plugin.sha256", "64 hex"}},
		{"plugin env", func(c *Config) { c.Storage.Plugin.Env = []string{"A=1", "B"} }, []string{`storage.plugin.env[1] = "B"`}},
		{"plugin timeout", func(c *Config) { c.Storage.Plugin.StartTimeoutMS = 0 }, []string{"storage.plugin.start_timeout_ms"}},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, []string{`log.level = "loud"`, "debug, info, warn, error"}},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, []string{"log.format"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.edit(&c)
			err := c.Validate()
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestValidateJoinsAllErrors(t *testing.T) {
	c := Default()
	c.NodeID = 0
	c.Raft.Port = -1
	c.Log.Format = "xml"
	err := c.Validate()
	for _, k := range []string{"node_id", "raft.port", "log.format"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("joined error %q misses %s", err, k)
		}
	}
}

func TestValidConfigsPass(t *testing.T) {
	c := Default()
	c.Storage.Backend = BackendPlugin
	c.Storage.Plugin.Path = "/bin/true"
	c.Storage.Plugin.SHA256 = strings.Repeat("ab", 32)
	c.Storage.Plugin.Env = []string{"A=1", "B="}
	c.Join = []string{"[::1]:6001", "node-a.example:6001"}
	c.Raft.AdvertiseHost = "::1"
	c.HTTP.Port = 9100
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// The README documents every key; keep it honest.
func TestReadmeDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !strings.Contains(string(b), "`"+k+"`") {
			t.Errorf("README.md does not document key %s", k)
		}
	}
}

func TestEnvNamesFollowKeys(t *testing.T) {
	// Every key can be set from the environment with the documented name.
	t.Setenv("WALRUS_STORAGE_PLUGIN_START_TIMEOUT_MS", "1234")
	t.Setenv("WALRUS_TOPICS_AUTO_CREATE", "false")
	t.Setenv("WALRUS_HTTP_PORT", "9555")
	t.Setenv("WALRUS_STORAGE_MMAP_SEGMENT_FILE_BYTES", "1048576")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Plugin.StartTimeoutMS != 1234 || c.Topics.AutoCreate || c.HTTP.Port != 9555 || c.Storage.Mmap.SegmentFileBytes != 1<<20 {
		t.Fatalf("env not applied: %+v", c)
	}
}

func TestValidateKeyErrors(t *testing.T) {
	c := Default()
	c.Raft.Host = "0.0.0.0"
	c.Client.Port = 0
	err := c.Validate()
	var ke *KeyError
	if !errors.As(err, &ke) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate = %v, want *KeyError wrapping ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "raft.advertise_host") || strings.Count(err.Error(), "invalid configuration") != 1 {
		t.Fatalf("message %q", err)
	}
	c.Raft.AdvertiseHost = "10.1.2.3"
	c.Client.Port = 8080
	if err := c.Validate(); err != nil {
		t.Fatalf("wildcard host with advertise host: %v", err)
	}
}

// The secured sample loads, validates, and its hashes verify the example
// passwords it documents.
func TestAuthExampleConfig(t *testing.T) {
	c, err := Load("auth-example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Users) != 3 || len(c.ACLs) != 5 || !c.Security.MetricsAuth {
		t.Fatalf("users %d acls %d metrics_auth %v", len(c.Users), len(c.ACLs), c.Security.MetricsAuth)
	}
	store, err := auth.NewStore(c.AuthUsers())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range c.Users {
		if err := store.Authenticate(u.Name, u.Name+"-change-me"); err != nil {
			t.Errorf("user %s: %v", u.Name, err)
		}
	}
	if _, err := acl.New(c.ACLSpecs()); err != nil {
		t.Fatal(err)
	}
}

// Bad users and acls are refused at start, naming the entry.
func TestSecurityKeysValidated(t *testing.T) {
	c := Default()
	c.Users = []UserConfig{{Name: "a", PasswordHash: "plaintext"}, {Name: ""}}
	c.ACLs = []ACLConfig{{Principal: "", Resource: "*", Operations: []string{"read"}}, {Principal: "b", Resource: "x", Operations: []string{"fly"}}}
	err := c.Validate()
	if err == nil {
		t.Fatal("bad security keys accepted")
	}
	for _, want := range []string{"users[0] (a)", "users[1]: empty name", "acls[0]: empty principal", `acls[1] (b): unknown operation "fly"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q missing from %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "plaintext") {
		t.Error("the error echoes a password_hash")
	}
	c = Default()
	c.Security.MetricsAuth = true
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "security.metrics_auth") {
		t.Fatalf("metrics_auth without users: %v", err)
	}
}
