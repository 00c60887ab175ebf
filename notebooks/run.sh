#!/usr/bin/env bash
# Executes every notebook in notebooks/ headless on small inputs generated here, and fails if any
# cell fails. Called by scripts/test; also useful alone:  notebooks/run.sh
#
# 1. Python packages (notebooks/requirements.txt) are installed from PyPI into a virtual
#    environment ($HOMEOSTAT_NOTEBOOK_VENV, default target/notebooks-venv) when missing there.
# 2. Inputs, with the release binary: `evaluate nab` (three detectors, on two corpora: the NAB
#    sub-corpus below and a one-scenario simulated corpus from `homeostat corpus export`, each
#    also scored at the thresholds chosen on the other) and `evaluate forecast` on a
#    three-file sub-corpus copied from $HOMEOSTAT_NAB_DIR (one labelled file from each of three
#    categories), and `replay` on notebooks/fixtures/bad-pod-short.yaml. Without
#    $HOMEOSTAT_NAB_DIR a small synthetic corpus is generated instead — except under CI=true,
#    where a missing corpus is a failure.
# 3. `jupyter nbconvert --to notebook --execute` on every notebook, into a temporary directory
#    (nothing in the repository is modified).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

venv=${HOMEOSTAT_NOTEBOOK_VENV:-$repo/target/notebooks-venv}
python=${PYTHON:-python3}
if ! "$venv/bin/python" -c 'import nbconvert, nbclient, ipykernel, matplotlib, pandas' 2>/dev/null; then
  echo "notebooks/run.sh: installing notebooks/requirements.txt into $venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r notebooks/requirements.txt
fi
py=$venv/bin/python

# scripts/test passes its own profile so the binary its tests built is reused.
profile=${HOMEOSTAT_CARGO_PROFILE:-release}
cargo build --profile "$profile" --quiet -p homeostat
homeostat=${CARGO_TARGET_DIR:-$repo/target}/$profile/homeostat

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
corpus=$work/corpus

if [ -n "${HOMEOSTAT_NAB_DIR:-}" ] && [ -d "$HOMEOSTAT_NAB_DIR/data" ]; then
  # The first labelled (non-empty windows) file of three categories, with their labels.
  "$py" - "$HOMEOSTAT_NAB_DIR" "$corpus" <<'PY'
import json, pathlib, shutil, sys
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
labels = json.loads((src / "labels/combined_windows.json").read_text())
chosen = {}
for name in sorted(labels):
    category = name.split("/")[0]
    if labels[name] and category not in chosen and (src / "data" / name).is_file():
        chosen[category] = name
names = [chosen[c] for c in sorted(chosen)[:3]]
if len(names) < 3:
    sys.exit(f"{src}: fewer than three categories with labelled files")
for name in names:
    (dst / "data" / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "data" / name, dst / "data" / name)
(dst / "labels").mkdir(parents=True)
(dst / "labels/combined_windows.json").write_text(json.dumps({n: labels[n] for n in names}, indent=1))
(dst / "config").mkdir()
shutil.copy(src / "config/profiles.json", dst / "config/profiles.json")
print("notebooks/run.sh: sub-corpus", ", ".join(names))
PY
elif [ "${CI:-}" = "true" ]; then
  echo "notebooks/run.sh: HOMEOSTAT_NAB_DIR is not set or has no data/ (CI=true: a missing corpus is a failure)" >&2
  exit 1
else
  echo "notebooks/run.sh: HOMEOSTAT_NAB_DIR not set; generating a synthetic three-category corpus"
  "$py" - "$corpus" <<'PY'
import datetime, json, math, pathlib, random, sys
dst = pathlib.Path(sys.argv[1])
rng = random.Random(8)
start = datetime.datetime(2014, 1, 1)
stamp = lambda i: (start + datetime.timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S")
labels = {}
for k, category in enumerate(["synthLevel", "synthSpike", "synthTrend"]):
    name = f"{category}/series.csv"
    rows = ["timestamp,value"]
    for i in range(1200):
        v = 50 + 10 * math.sin(2 * math.pi * i / 288) + rng.gauss(0, 1)
        if k == 0 and i >= 800:
            v += 30
        if k == 1 and 900 <= i < 903:
            v += 60
        if k == 2 and i >= 700:
            v += 0.2 * (i - 700)
        rows.append(f"{stamp(i)},{v:.3f}")
    (dst / "data" / category).mkdir(parents=True)
    (dst / "data" / name).write_text("\n".join(rows) + "\n")
    at = [800, 900, 700][k]
    labels[name] = [[stamp(at - 60) + ".000000", stamp(at + 60) + ".000000"]]
(dst / "labels").mkdir()
(dst / "labels/combined_windows.json").write_text(json.dumps(labels, indent=1))
(dst / "config").mkdir()
profiles = {p: {"CostMatrix": {"tpWeight": 1.0, "fnWeight": fn, "fpWeight": fp}}
            for p, fn, fp in [("standard", 1.0, 0.11), ("reward_low_FP_rate", 1.0, 0.22), ("reward_low_FN_rate", 2.0, 0.11)]}
(dst / "config/profiles.json").write_text(json.dumps(profiles, indent=1))
PY
fi

inputs=$work/inputs
mkdir -p "$inputs/nab/sub-corpus" "$inputs/nab/simulated"
simulated=$work/simulated
"$homeostat" corpus export "$simulated" --seeds 1 --scenarios bad-canary
for detector in conformal likelihood bocpd changepoint; do
  "$homeostat" evaluate nab --corpus "$corpus" --detector "$detector" --format json \
    --thresholds-from "$simulated" > "$inputs/nab/sub-corpus/$detector.json"
  "$homeostat" evaluate nab --corpus "$simulated" --detector "$detector" --format json \
    --thresholds-from "$corpus" > "$inputs/nab/simulated/$detector.json"
done
"$homeostat" evaluate forecast --corpus "$corpus" --horizon 1h --format json \
  --series-out "$inputs/forecast-series" > "$inputs/forecast.json"
"$homeostat" replay notebooks/fixtures/bad-pod-short.yaml --out "$inputs/replay" --format json \
  > "$inputs/replay.json"

export HOMEOSTAT_NAB_JSON_DIR=$inputs/nab
export HOMEOSTAT_FORECAST_JSON=$inputs/forecast.json
export HOMEOSTAT_FORECAST_SERIES_DIR=$inputs/forecast-series
export HOMEOSTAT_REPLAY_JSON=$inputs/replay.json
export HOMEOSTAT_REPLAY_DIR=$inputs/replay
failed=0
for notebook in notebooks/*.ipynb; do
  if "$py" -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=300 \
      --output-dir "$work/executed" "$notebook" >"$work/nbconvert.log" 2>&1; then
    echo "notebooks/run.sh: $notebook ok"
  else
    echo "notebooks/run.sh: $notebook FAILED" >&2
    cat "$work/nbconvert.log" >&2
    failed=1
  fi
done
exit $failed
