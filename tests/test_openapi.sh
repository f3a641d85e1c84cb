#!/usr/bin/env bash
# test_openapi.sh: docs/openapi.yaml is a valid OpenAPI 3.1 document, linted
# by the pinned @redocly/cli (package.json) with the rules of redocly.yaml,
# and names every route of the gateway's route table (gateway/daemon/http.c
# and the journal routes of http_journal.c).  tests/it_openapi.py checks the
# live answers against its schemas.
set -euo pipefail

srcdir=${LB_SRCDIR:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)}
builddir=${LB_BUILDDIR:-$srcdir}
spec=$srcdir/docs/openapi.yaml

# The source tree's packages (./quickstart runs npm ci there), else the
# pinned ones installed into the build tree, as tests/it_console.py does.
redocly=$srcdir/node_modules/.bin/redocly
if [ ! -x "$redocly" ]; then
	npm=$builddir/tests/npm
	redocly=$npm/node_modules/.bin/redocly
	if [ ! -x "$redocly" ]; then
		mkdir -p "$npm"
		cp "$srcdir/package.json" "$srcdir/package-lock.json" "$npm/"
		(cd "$npm" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
	fi
fi

REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
    "$redocly" lint --config "$srcdir/redocly.yaml" "$spec"

# Every route of the tables is a path of the document.
status=0
routes=$(sed -n 's/^[[:space:]]*{ "\(\/[a-z0-9/]*\)",.*/\1/p' \
    "$srcdir/gateway/daemon/http.c" "$srcdir/gateway/daemon/http_journal.c" | sort -u)
for r in $routes; do
	case $r in
	*/) pattern="^  ${r}[^:]" ;;	# an id, a file or a sub-route follows
	*) pattern="^  ${r}:" ;;
	esac
	if ! grep -q "$pattern" "$spec"; then
		echo "docs/openapi.yaml: no path for the route $r" >&2
		status=1
	fi
done
[ -n "$routes" ] || { echo "no routes found in http.c" >&2; exit 1; }
exit $status
