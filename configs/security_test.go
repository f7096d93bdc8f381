package configs

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestSecureSamples: configs/secure/node{1,2,3}.yaml load, keep the quick
// start's ports and name the files scripts/make-certs.sh writes.
func TestSecureSamples(t *testing.T) {
	for i := 1; i <= 3; i++ {
		file := fmt.Sprintf("secure/node%d.yaml", i)
		t.Run(file, func(t *testing.T) {
			c, err := Load(file, nil)
			if err != nil {
				t.Fatal(err)
			}
			node := fmt.Sprintf("certs/node%d", i)
			if c.NodeID != uint64(i) || c.Client.Port != 9090+i || c.Raft.Port != 6000+i || c.HTTP.Port != 9100+i {
				t.Fatalf("got id=%d client=%d raft=%d http=%d", c.NodeID, c.Client.Port, c.Raft.Port, c.HTTP.Port)
			}
			want := TLSConfig{CertFile: node + ".crt", KeyFile: node + ".key"}
			if c.TLS != want {
				t.Fatalf("tls = %+v, want %+v", c.TLS, want)
			}
			wantCluster := ClusterTLSConfig{CertFile: node + ".crt", KeyFile: node + ".key", CAFile: "certs/ca.crt"}
			if c.ClusterTLS != wantCluster {
				t.Fatalf("cluster_tls = %+v, want %+v", c.ClusterTLS, wantCluster)
			}
		})
	}
}

func TestTLSKeysComeInSets(t *testing.T) {
	for _, tt := range []struct {
		name, yaml, key string
	}{
		{"cert without key", "tls: {cert_file: a.crt}", "tls.key_file"},
		{"key without cert", "tls: {key_file: a.key}", "tls.key_file"},
		{"client CA without a certificate", "tls: {client_ca_file: ca.crt}", "tls.client_ca_file"},
		{"cluster without CA", "cluster_tls: {cert_file: a.crt, key_file: a.key}", "cluster_tls"},
		{"cluster CA only", "cluster_tls: {ca_file: ca.crt}", "cluster_tls"},
		{"complete", "tls: {cert_file: a.crt, key_file: a.key, client_ca_file: ca.crt}\ncluster_tls: {cert_file: a.crt, key_file: a.key, ca_file: ca.crt}", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeYAML(t, tt.yaml), nil)
			if tt.key == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.key+" = ") {
				t.Fatalf("err = %v, want a KeyError for %s", err, tt.key)
			}
		})
	}
}
