#!/usr/bin/env python3
"""Renders `homeostat replay --format json` as the summary table of docs/replay-results-sim.md.

Usage: cargo run --release -p homeostat -- replay --format json > replay.json
       scripts/replay-results.py replay.json
Prints Markdown: one summary row per scenario (best baseline, homeostat, HPA frontier, target)
and one table per scenario with every run's metrics, all as the JSON has them.
"""
import json
import sys


def name(kind):
    return kind if isinstance(kind, str) else json.dumps(kind)


def main(path):
    doc = json.load(open(path))
    out = ["| scenario | best baseline (SLO min / replica-h) | homeostat | HPA frontier at homeostat's cost | target |",
           "|---|---|---|---|---|"]
    for s in doc["scenarios"]:
        c = s.get("comparison") or {}
        b, h = c.get("best_baseline"), c.get("homeostat")
        cell = lambda p: f"`{p['run']}` {p['slo_violation_minutes']} / {p['replica_hours']:.2f}" if p else "—"
        fr = c.get("frontier_at_cost")
        out.append(f"| {s['scenario']} | {cell(b)} | {cell(h)} | {fr if fr is not None else '—'} | "
                   f"{'met' if c.get('target_met') else '**missed**'} |")
    for s in doc["scenarios"]:
        out += ["", f"## {s['scenario']}", "",
                "| run | SLO-min | availability | p50 ms | p99 ms | replica-h | retries | ejections | actions |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in s["runs"]:
            m = r["metrics"]
            acts = m.get("actions")
            acts = len(acts) if isinstance(acts, list) else acts
            out.append(f"| {name(r['kind'])} | {m['slo_violation_minutes']} | {m['availability']:.5f} | "
                       f"{m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {m['replica_hours']:.2f} | {m['retries']} | "
                       f"{m['ejections']} | {acts} |")
    for sk in doc.get("skipped", []):
        out.append(f"\nSkipped: {sk}")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
