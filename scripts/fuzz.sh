#!/usr/bin/env bash
# Run every Go fuzz target in the repository for FUZZTIME each (default 10s).
#   scripts/fuzz.sh            FUZZTIME=1m scripts/fuzz.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
FUZZTIME=${FUZZTIME:-10s}
found=0
while IFS=: read -r file fn; do
	pkg=./$(dirname "$file")
	found=$((found + 1))
	log "fuzz $pkg $fn for $FUZZTIME"
	go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" "$pkg"
done < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' . | sed -E 's#^\./##; s/:func /:/' | sort -u)
log "ran $found fuzz target(s)"
