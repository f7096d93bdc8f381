#!/usr/bin/env bash
# Make a local CA and certificates for the 3-node quick start with openssl.
#
#   scripts/make-certs.sh            # into ./certs (CERTS_DIR overrides)
#
# Writes, under CERTS_DIR:
#   ca.crt, ca.key                  the local CA (kept and reused when present)
#   node1.crt ... node3.crt, .key   node certificates: SAN IP:127.0.0.1 and
#                                   DNS:localhost, usages serverAuth and
#                                   clientAuth (one certificate serves the
#                                   client, HTTP and Raft/RPC ports)
#   client.crt, client.key          a walrus-cli certificate (clientAuth), for
#                                   nodes that set tls.client_ca_file
# configs/secure/node{1,2,3}.yaml point at these files. Leaves are re-issued on
# every run (a running node picks them up within seconds, or on SIGHUP).
# Env: CERTS_DIR, DAYS (leaf validity, default 825), WALRUS_ROOT.
# This is a local CA for trying TLS out; production certificates come from
# your own PKI (see docs/security.md for what a node certificate must carry).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
CERTS_DIR=${CERTS_DIR:-$ROOT/certs}
DAYS=${DAYS:-825}
mkdir -p "$CERTS_DIR"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ ! -f $CERTS_DIR/ca.key || ! -f $CERTS_DIR/ca.crt ]]; then
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$CERTS_DIR/ca.key" -out "$CERTS_DIR/ca.crt" -days 3650 \
		-subj "/CN=Walrus local CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	log "made CA $CERTS_DIR/ca.crt"
else
	log "reusing CA $CERTS_DIR/ca.crt"
fi

# issue NAME EXTENDED_KEY_USAGE [SAN]
issue() {
	local name=$1 eku=$2 san=${3:-}
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=$eku"
		[[ -n $san ]] && echo "subjectAltName=$san"
	} >"$tmp/$name.ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$tmp/$name.key" -out "$tmp/$name.csr" -subj "/CN=$name" 2>/dev/null
	openssl x509 -req -in "$tmp/$name.csr" -CA "$CERTS_DIR/ca.crt" -CAkey "$CERTS_DIR/ca.key" \
		-CAcreateserial -CAserial "$tmp/ca.srl" -days "$DAYS" -extfile "$tmp/$name.ext" \
		-out "$tmp/$name.crt" 2>/dev/null
	# Rename into place: a running node never reads half a file.
	mv -f "$tmp/$name.key" "$CERTS_DIR/$name.key"
	mv -f "$tmp/$name.crt" "$CERTS_DIR/$name.crt"
	log "issued $CERTS_DIR/$name.crt"
}

for n in node1 node2 node3; do
	issue "$n" serverAuth,clientAuth "IP:127.0.0.1,DNS:localhost"
done
issue client clientAuth
chmod 644 "$CERTS_DIR"/*.crt
