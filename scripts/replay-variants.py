#!/usr/bin/env python3
"""Writes variants of the built-in fault scenarios, to replay homeostat beyond the suite it was
built on (docs/replay-results-sim.md, "Beyond the built-in suite").

    scripts/replay-variants.py OUT_DIR
    homeostat replay --baseline istio,tuned,hpa-70,flagger --format json OUT_DIR/*.yaml > variants.json
    scripts/replay-variants.py --table variants.json     # the Markdown table in the docs

For every built-in scenario with faults: the traffic rate x0.6 and x1.4, each with a milder
and a harsher fault (error rate 0.3 or x1.5, capped at 1; slowdown halved (at least 1.5) or
x1.5; surge 3x or 7x), moved to minute 20 (and ending at minute 40 when it ends), and with no
fault at all (a clean twin, where the Governor should stay quiet); and each as built in, with
telemetry every 30 s and every 60 s instead of 15 s. Plus `diurnal` with a 4 h period over 8 h.
Needs PyYAML.
"""
import copy
import json
import pathlib
import sys

try:
    import yaml
except ImportError:
    sys.exit("scripts/replay-variants.py needs PyYAML (pip install pyyaml)")


def absolute(node, base):
    """Data paths are relative to the scenario's own file: make them absolute for the copy."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "file" and isinstance(value, str) and not value.startswith("/"):
                node[key] = str((base / value).resolve())
            else:
                absolute(value, base)
    elif isinstance(node, list):
        for value in node:
            absolute(value, base)


def scaled(profile, factor):
    for value in profile.values():
        if isinstance(value, dict) and "rate" in value:
            value["rate"] = value["rate"] * factor


def table(path):
    """One row per scenario: the best baseline (fewest SLO minutes, then replica-hours),
    homeostat, and its Governor actions (the HPA's own replica changes excluded)."""
    try:
        scenarios = json.loads(pathlib.Path(path).read_text())["scenarios"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        sys.exit(f"{path}: not `homeostat replay --format json` output: {e!r}")
    print("| scenario | best baseline | homeostat | Governor actions | first at |")
    print("|---|---|---|---|---|")
    for s in scenarios:
        runs = {r["kind"]: r["metrics"] for r in s["runs"]}
        if "homeostat" not in runs:
            sys.exit(f"{path}: {s['scenario']}: no homeostat run (notes: {s.get('notes')})")
        h = runs["homeostat"]
        best = min((m["slo_violation_minutes"], m["replica_hours"], k)
                   for k, m in runs.items() if k != "homeostat")
        gov = [a for a in h["actions"] if a["knob"] != "replicas"]
        first = f"{gov[0]['t_s']:.0f} s" if gov else "—"
        print(f"| {s['scenario']} | `{best[2]}` {best[0]} / {best[1]:.2f} | "
              f"{h['slo_violation_minutes']} / {h['replica_hours']:.2f} | {len(gov)} | {first} |")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--table":
        return table(sys.argv[2])
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    scenarios = pathlib.Path(__file__).resolve().parent.parent / "simulator" / "scenarios"
    for path in sorted(scenarios.glob("*.yaml")):
        base = yaml.safe_load(path.read_text())
        absolute(base, scenarios)
        if base["name"] == "diurnal":
            s = copy.deepcopy(base)
            s["name"] = "diurnal-4h"
            s["duration"] = "8h"
            s["traffic"]["profile"]["diurnal"]["period"] = "4h"
            (out / "diurnal-4h.yaml").write_text(yaml.safe_dump(s, sort_keys=False))
        if "faults" not in base:
            continue
        for interval in ("30s", "60s"):
            s = copy.deepcopy(base)
            s["name"] = f"{base['name']}-telemetry-{interval}"
            s["telemetryInterval"] = interval
            (out / f"{s['name']}.yaml").write_text(yaml.safe_dump(s, sort_keys=False))
        for factor in (0.6, 1.4):
            for severity in ("low", "high", "clean"):
                s = copy.deepcopy(base)
                s["name"] = f"{base['name']}-x{factor}-{severity}"
                scaled(s["traffic"]["profile"], factor)
                if severity == "clean":
                    del s["faults"]
                for f in s.get("faults", []):
                    f["at"] = "20m"
                    if "until" in f:
                        f["until"] = "40m"
                    if "errorRate" in f:
                        f["errorRate"] = 0.3 if severity == "low" else min(1.0, f["errorRate"] * 1.5)
                    if "slowdown" in f:
                        f["slowdown"] = max(1.5, f["slowdown"] / 2) if severity == "low" else f["slowdown"] * 1.5
                    if "surge" in f:
                        f["surge"] = 3 if severity == "low" else 7
                (out / f"{s['name']}.yaml").write_text(yaml.safe_dump(s, sort_keys=False))


if __name__ == "__main__":
    main()
