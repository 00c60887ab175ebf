#!/usr/bin/env python3
"""Sums `homeostat replay --format json` over several seeds: is a result the scenario's own seed
gave also what other arrivals and fault draws give?

Usage: for s in 1 2 3 4 5 6 7 8; do
         homeostat replay --seed $s --format json > seed$s.json
       done
       scripts/replay-seeds.py seed*.json
Prints Markdown: per scenario, homeostat's and every baseline's SLO-violation minutes summed over
the files (and replica-hours), the baseline with the fewest of them, how many files met issue 7's target (the
`comparison` of each file, as `homeostat replay` judged it), the Governor's own actions (HPA
replica changes left out) and the seeds at which homeostat had more SLO minutes than the run
with the fewest.
"""
import json
import os
import sys


def kind_name(kind):
    return kind if isinstance(kind, str) else json.dumps(kind)


def main(paths):
    per = {}  # scenario -> list of (file, {run: metrics}, comparison)
    order = []
    for path in paths:
        try:
            with open(path) as f:
                doc = json.load(f)
            scenarios = doc["scenarios"]
            for s in scenarios:
                for key in ("scenario", "runs"):
                    if key not in s:
                        raise KeyError(key)
        except (OSError, ValueError) as e:
            sys.exit(f"{path}: {e}")
        except (KeyError, TypeError) as e:
            sys.exit(f"{path}: not the output of `homeostat replay --format json` (no {e})")
        for s in scenarios:
            if s["scenario"] not in per:
                per[s["scenario"]] = []
                order.append(s["scenario"])
            runs = {kind_name(r["kind"]): r["metrics"] for r in s["runs"]}
            per[s["scenario"]].append((path, runs, s.get("comparison") or {}))
    out = [f"{len(paths)} files: {', '.join(paths)}", "",
           "| scenario | homeostat: SLO min / replica-h (sums) | the baseline with the fewest SLO min "
           "(the cheaper on a tie) | "
           "target met | Governor actions | files where homeostat had more than the fewest |",
           "|---|---|---|---|---|---|"]
    for name in order:
        rows = per[name]
        if any("homeostat" not in runs for _, runs, _ in rows):
            out.append(f"| {name} | not run in every file | | | | |")
            continue
        # run -> (SLO minutes, replica-hours), summed; ties go to the cheaper run.
        totals = {}
        for _, runs, _ in rows:
            for run, m in runs.items():
                slo, rh = totals.get(run, (0, 0.0))
                totals[run] = (slo + m["slo_violation_minutes"], rh + m["replica_hours"])
        home = totals.pop("homeostat")
        best = min(totals.items(), key=lambda kv: (kv[1][0], kv[1][1], kv[0])) if totals else ("—", (0, 0.0))
        met = sum(1 for _, _, c in rows if c.get("target_met"))
        actions = sum(
            sum(1 for a in runs["homeostat"]["actions"] if a.get("knob") != "replicas")
            for _, runs, _ in rows)
        worse = []
        for path, runs, _ in rows:
            h = runs["homeostat"]["slo_violation_minutes"]
            others = [m["slo_violation_minutes"] for r, m in runs.items() if r != "homeostat"]
            if others and h > min(others):
                label = os.path.splitext(os.path.basename(path))[0]
                worse.append(f"{label} ({h} vs {min(others)})")
        out.append(f"| {name} | {home[0]} / {home[1]:.1f} | `{best[0]}` {best[1][0]} / {best[1][1]:.1f} | "
                   f"{met}/{len(rows)} | {actions} | "
                   f"{'; '.join(worse) if worse else '—'} |")
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
