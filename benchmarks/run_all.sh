#!/usr/bin/env bash
# Every benchmark of benchmarks/README.md, one after another (~20 minutes on the 2-core machine).
# Needs: the project's venv active (reldist installed: pip install -e '.[test]') and
# /usr/sbin/smtp-sink (Debian package postfix). mailmerge, for the comparison, goes into its own
# venv under benchmarks/out/mm-venv, made here on the first run (pip install mailmerge).
# Everything it writes is under benchmarks/out/ (git ignores it); each script prints the machine
# (CPU model, cores), the commit and the Python version before its tables.
#
# The code measured is a copy of src/reldist taken when this script starts (benchmarks/out/src/,
# put first on PYTHONPATH, so the `reldist` command and every child process use it): edits made
# to src/ while the ~25 minutes run do not mix into the figures. Logs and JSON: benchmarks/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/out
mkdir -p "$out"
rm -rf "$out/src"
mkdir -p "$out/src"
cp -r src/reldist "$out/src/"
# the example workspace, where an installed wheel has it (reldist/example/), for 'reldist init'
mkdir -p "$out/src/reldist/example"
cp -r reldist.toml templates contacts releases "$out/src/reldist/example/"
find "$out/src" -name __pycache__ -prune -exec rm -rf {} +
export PYTHONPATH="$PWD/$out/src${PYTHONPATH:+:$PYTHONPATH}"
export RELDIST_BENCH_SOURCE="copy of src/ at $(git rev-parse --short HEAD)$(git status --porcelain -- src | grep -q . && echo ' plus uncommitted changes:' $(git status --porcelain -- src | awk '{print $2}') || true)"
echo "measuring: $RELDIST_BENCH_SOURCE" | tee "$out/source.txt"
git diff -- src > "$out/source.diff" || true
if [ ! -x "$out/mm-venv/bin/mailmerge" ]; then
    python3 -m venv "$out/mm-venv"
    "$out/mm-venv/bin/pip" install -q mailmerge
fi
run() {
    local name=$1
    shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$out/$name.log"
}
run render python benchmarks/render.py --sizes 1000,10000,50000 --profile
run render-job python benchmarks/render.py --path job --sizes 1000,10000,50000 --no-tracemalloc --reference 0
run send-sink python benchmarks/send.py sink --sizes 10000,100000 --connections 4 --mode cli,inproc
run send-sink-conn python benchmarks/send.py sink --sizes 10000 --connections 1,2,4,8 --tag conn
run send-delay python benchmarks/send.py delay --sizes 2000 --connections 1,2,4,8
run send-delay-pipelining python benchmarks/send.py delay --sizes 2000 --connections 1,2,4,8 --pipelining --tag pipelining
run send-mailmerge python benchmarks/send.py mailmerge --sizes 10000 --mailmerge "$out/mm-venv/bin/mailmerge"
run startup python benchmarks/startup.py --runs 10
