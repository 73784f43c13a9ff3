#!/usr/bin/env bash
# Run the public "Open Responses" compliance suite (bin/compliance-test.ts of the
# openresponses/openresponses repository) against a running Rosetta gateway.
#
# This script fetches and installs nothing. Get the suite once, outside this repo:
#
#   git clone https://github.com/openresponses/openresponses /path/to/openresponses
#   npm install -g bun                  # bun itself comes from the npm registry
#   cd /path/to/openresponses && bun install   # installs zod 3.25.x (the only runtime dep the suite needs)
#
# Without network access to GitHub, clone a local mirror of that repository instead
# (e.g. a bare git dir: git clone /path/to/mirror.git /path/to/openresponses).
# Tested against suite commit 92c12d9 (bun 1.4.5, zod 3.25.76).
# (Never copy the suite's code into this repository.)
#
# Usage:
#   tests/compliance/run-openresponses.sh [OPENRESPONSES_DIR [BASE_URL [API_KEY [MODEL]]]] [-- extra suite flags]
#
# Each positional argument falls back to an environment variable, then a default:
#   OPENRESPONSES_DIR       checkout of the suite                      (required)
#   ROSETTA_BASE_URL        base URL, the suite appends /responses     (http://127.0.0.1:8080/v1)
#   OPENRESPONSES_API_KEY   sent as "Authorization: Bearer <key>"      (ROSETTA_API_KEY, else rosetta-test-key)
#   ROSETTA_MODEL           "model" field of every request             (local)
# Optional:
#   OPENRESPONSES_EXCLUDE   extra comma-separated test ids to skip
#   OPENRESPONSES_ONLY      comma-separated test ids to run (still minus the exclusions)
# Anything after "--" is passed to the suite unchanged, e.g. -- --verbose   or   -- --json
#
# Every test of the checkout runs (WebSocket ones included) unless excluded. The suite has
# no exclude flag, so the complement is computed from the checkout's own test list and
# passed as --filter.
#
# Exit status: the suite's (1 when any test fails or it crashes, 0 otherwise);
# 2 for a usage / setup problem, including "no test left to run".
set -euo pipefail

usage_exit() { printf 'run-openresponses: %s\n' "$*" >&2; exit 2; }

positional=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) positional+=("$1"); shift ;;
  esac
done
[ "${#positional[@]}" -le 4 ] || usage_exit "too many arguments (see --help)"

OPENRESPONSES_DIR="${positional[0]:-${OPENRESPONSES_DIR:-}}"
BASE_URL="${positional[1]:-${ROSETTA_BASE_URL:-http://127.0.0.1:8080/v1}}"
API_KEY="${positional[2]:-${OPENRESPONSES_API_KEY:-${ROSETTA_API_KEY:-rosetta-test-key}}}"
MODEL="${positional[3]:-${ROSETTA_MODEL:-local}}"

install_hint() {
  cat >&2 <<EOF
run-openresponses: $1
To set the suite up (outside this repository):
  git clone https://github.com/openresponses/openresponses <dir>
  npm install -g bun          # or: npm install --prefix ~/.local bun, then put ~/.local/bin on PATH
  cd <dir> && bun install     # needs at least node_modules/zod (3.25.x)
then: OPENRESPONSES_DIR=<dir> $0
EOF
  exit 2
}

[ -n "$OPENRESPONSES_DIR" ] || install_hint "no suite checkout given (argument 1 or OPENRESPONSES_DIR)"
suite_dir="$(cd "$OPENRESPONSES_DIR" 2>/dev/null && pwd)" \
  || install_hint "suite checkout not found: $OPENRESPONSES_DIR"
OPENRESPONSES_DIR="$suite_dir"
[ -f "$OPENRESPONSES_DIR/bin/compliance-test.ts" ] \
  || install_hint "$OPENRESPONSES_DIR has no bin/compliance-test.ts (not an openresponses checkout?)"
command -v bun >/dev/null 2>&1 || install_hint "bun is not on PATH"
[ -f "$OPENRESPONSES_DIR/node_modules/zod/package.json" ] \
  || install_hint "the suite's dependencies are not installed ($OPENRESPONSES_DIR/node_modules/zod missing)"

# Test ids to run: every template of the checkout, minus the exclusions.
ids="$(
  OR_DIR="$OPENRESPONSES_DIR" OR_EXCLUDE="${OPENRESPONSES_EXCLUDE:-}" OR_ONLY="${OPENRESPONSES_ONLY:-}" \
    bun -e '
      const { testTemplates } = await import(process.env.OR_DIR + "/src/lib/compliance-tests.ts");
      const list = (s) => (s || "").split(",").map((x) => x.trim()).filter(Boolean);
      const extra = new Set(list(process.env.OR_EXCLUDE));
      const only = new Set(list(process.env.OR_ONLY));
      const known = new Set(testTemplates.map((t) => t.id));
      for (const id of [...extra, ...only]) {
        if (!known.has(id)) console.error(`run-openresponses: warning: unknown test id ${id}`);
      }
      const keep = testTemplates.filter((t) =>
        !extra.has(t.id) && (only.size === 0 || only.has(t.id)));
      console.log(keep.map((t) => t.id).join(","));
    '
)" || usage_exit "could not load the test list from $OPENRESPONSES_DIR/src/lib/compliance-tests.ts"
[ -n "$ids" ] || usage_exit "no test left to run after exclusions"

echo "run-openresponses: suite $OPENRESPONSES_DIR ($(git -C "$OPENRESPONSES_DIR" rev-parse --short HEAD 2>/dev/null || echo 'unknown rev'))" >&2
echo "run-openresponses: tests $ids" >&2

cd "$OPENRESPONSES_DIR"
status=0
bun run bin/compliance-test.ts \
  --base-url "$BASE_URL" \
  --api-key "$API_KEY" \
  --model "$MODEL" \
  --filter "$ids" \
  ${extra[@]+"${extra[@]}"} || status=$?
exit "$status"
