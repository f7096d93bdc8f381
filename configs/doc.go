// Package configs owns the daemon's configuration: the Config struct with
// its documented defaults, the viper loader that merges defaults, a YAML
// file, WALRUS_* environment variables and command-line flags (in viper's
// precedence: flag > environment > file > default), and the validation that
// names every bad key with its value and allowed range.
//
// It also ships the sample YAML files of this directory (single.yaml and the
// node1..node3.yaml set of a local 3-node cluster); a test loads each.
//
// configs is the only package that imports viper. It does not import the
// node or any backend: the daemon (cli/walrus) turns a Config into
// node.Config and picks the backend. Load creates its own *viper.Viper, so
// there is no global state and concurrent Loads are independent.
package configs
