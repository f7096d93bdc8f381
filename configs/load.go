package configs

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix prefixes every environment override: key raft.port is read from
// WALRUS_RAFT_PORT.
const EnvPrefix = "WALRUS"

// ErrInvalid marks every configuration error (bad file, unknown key, value
// out of range); match it with errors.Is.
var ErrInvalid = errors.New("invalid configuration")

// seedEnv are the original's environment names, bound explicitly so they
// keep working whatever the key layout.
var seedEnv = map[string]string{
	"max_segment_entries": "WALRUS_MAX_SEGMENT_ENTRIES",
	"monitor_check_ms":    "WALRUS_MONITOR_CHECK_MS",
}

// Load builds the configuration from, lowest precedence first: Default(),
// the YAML file (when file != ""), WALRUS_* environment variables, and the
// flags of fs that were set on the command line (fs may be nil; its flags
// should come from AddFlags). Unknown keys in the file, values that do not
// parse and values out of range all fail with an error wrapping ErrInvalid
// that names the key.
func Load(file string, fs *pflag.FlagSet) (Config, error) {
	v := viper.New()
	// viper#761: Unmarshal only sees environment variables for keys viper
	// already knows, so register every key with its default first.
	for key, val := range flatten(Default()) {
		v.SetDefault(key, val)
	}
	if file == "" {
		v.SetDefault("kafka.port", NoConfigKafkaPort)
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for key, env := range seedEnv {
		if err := v.BindEnv(key, env); err != nil {
			return Config{}, fmt.Errorf("configs: bind %s: %w", env, err)
		}
	}
	if fs != nil {
		for _, b := range flagBindings {
			f := fs.Lookup(b.flag)
			if f == nil {
				continue
			}
			if err := v.BindPFlag(b.key, f); err != nil {
				return Config{}, fmt.Errorf("configs: bind flag --%s: %w", b.flag, err)
			}
		}
	}
	if file != "" {
		if err := readFile(v, file); err != nil {
			return Config{}, err
		}
	}
	var c Config
	if err := v.UnmarshalExact(&c); err != nil {
		// mapstructure prefixes its list with a header line; the list
		// itself names the keys ("'raft' has invalid keys: prot").
		msg := strings.TrimSpace(strings.TrimPrefix(err.Error(), "decoding failed due to the following error(s):"))
		return Config{}, fmt.Errorf("configs: %s: %w: %s", describe(file), ErrInvalid, msg)
	}
	c.File = file
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("configs: %s: %w", describe(file), err)
	}
	return c, nil
}

func readFile(v *viper.Viper, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("configs: %w: %w", ErrInvalid, err)
	}
	defer f.Close()
	// The format is always YAML, whatever the file is called.
	v.SetConfigType("yaml")
	if err := v.ReadConfig(f); err != nil {
		return fmt.Errorf("configs: %s: %w: %w", file, ErrInvalid, err)
	}
	return nil
}

func describe(file string) string {
	if file == "" {
		return "defaults, environment and flags"
	}
	return file
}

// flatten turns a Config into dotted key → value pairs using the
// mapstructure tags, skipping fields tagged "-".
func flatten(c Config) map[string]any {
	out := map[string]any{}
	var walk func(prefix string, rv reflect.Value)
	walk = func(prefix string, rv reflect.Value) {
		rt := rv.Type()
		for i := range rt.NumField() {
			tag := rt.Field(i).Tag.Get("mapstructure")
			if tag == "" || tag == "-" {
				continue
			}
			key := prefix + tag
			fv := rv.Field(i)
			if fv.Kind() == reflect.Struct {
				walk(key+".", fv)
				continue
			}
			out[key] = fv.Interface()
		}
	}
	walk("", reflect.ValueOf(c))
	return out
}

// Keys lists every config key in dotted form, sorted by the struct order.
func Keys() []string {
	var keys []string
	var walk func(prefix string, rt reflect.Type)
	walk = func(prefix string, rt reflect.Type) {
		for i := range rt.NumField() {
			tag := rt.Field(i).Tag.Get("mapstructure")
			if tag == "" || tag == "-" {
				continue
			}
			if rt.Field(i).Type.Kind() == reflect.Struct {
				walk(prefix+tag+".", rt.Field(i).Type)
				continue
			}
			keys = append(keys, prefix+tag)
		}
	}
	walk("", reflect.TypeFor[Config]())
	return keys
}
