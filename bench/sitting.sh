#!/usr/bin/env bash
# One sitting of the benchmarks behind the README's performance tables, one after the
# other on a machine left alone meanwhile (about 30 minutes on 2 CPUs, most of it MLflow).
#
#     bench/sitting.sh                  # every bench, MLflow beside where the bench has it
#     SKIP_MLFLOW=1 bench/sitting.sh    # trialbook and the machine's limits only
#     QUICK=1 bench/sitting.sh          # MLflow on ingest only: no 10,000-run MLflow store
#                                       # for ui.py, no UI book for server.py (~25 min)
#
# Each bench's table goes to bench/.work/sitting/<name>.md and to stdout, with the load
# average before and after; a bench that fails is named at the end (exit status 1).
# MLflow runs from bench/.venv-mlflow (bench/ingest.py creates it on first use).
set -u
cd "$(dirname "$0")/.."
py=.venv/bin/python
out=bench/.work/sitting
mkdir -p "$out"
unset PYTHONDONTWRITEBYTECODE # timed as an installed package runs: bytecode cached
mlflow=()                   # ingest.py and ui.py: MLflow beside unless --skip-mlflow
server=(--skip-mlflow)      # server.py: MLflow beside when the venv has its command
if [ -n "${SKIP_MLFLOW:-}" ]; then
    mlflow=(--skip-mlflow)
elif [ -x bench/.venv-mlflow/bin/mlflow ]; then
    server=(--mlflow-bin bench/.venv-mlflow/bin/mlflow)
fi
failed=()
run() {
    local name=$1
    shift
    echo "== $name: $* (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    if "$py" "$@" >"$out/$name.md"; then
        cat "$out/$name.md"
        echo
    else
        failed+=("$name")
    fi
}
run ingest bench/ingest.py "${mlflow[@]}"
run ingest_pg bench/ingest_pg.py
run startup bench/startup.py
run runs_table bench/runs_table.py --reuse
run fingerprint_20k bench/fingerprint.py --files 20000 --size-kb 50
run fingerprint_100k bench/fingerprint.py --files 100000 --size-kb 2
run scale bench/scale.py --keep
if [ -n "${QUICK:-}" ]; then
    run ui bench/ui.py --skip-mlflow
    run server bench/server.py "${server[@]}" --skip-ui
else
    run ui bench/ui.py "${mlflow[@]}"
    run server bench/server.py "${server[@]}"
fi
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
