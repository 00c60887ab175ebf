#!/usr/bin/env python3
"""Writes a small NAB-format corpus of synthetic service telemetry with recurring incidents.

A stand-in for production telemetry we cannot see (docs/detection.md): per series index, four
series (request rate with a daily swing, dependency latency, crash counts, availability), every
third one at hourly steps and the rest at minute steps, each with 2-5 incidents of one shape
(recurring, as real incidents do) after the first 20 % of the series. Labels follow NAB's window
rule: floor(10 % of the rows / incidents) rows centred on each incident's first row.

    scripts/synthetic-corpus.py OUT [--seed N] [--series 15] [--hourly-rows 150:400]
                                     [--minute-rows 400:1200] [--single]

Seeded (random.Random): the same arguments write the same files. The shapes and sizes are
illustrative choices, not fitted to anything; this corpus checks that a detector does not
collapse on short series, small units or repeated incidents, it is not a benchmark.
"""
import argparse
import datetime
import json
import math
import os
import random

# Fewest rows a series may have: 5 incidents after the first 20 % need segments of at least
# 4 rows each for their random offset (see incident_starts).
MIN_ROWS = 40


def row_range(text):
    """LO:HI, MIN_ROWS <= LO < HI: the series length is drawn from [LO, HI)."""
    try:
        lo, hi = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LO:HI (two integers)")
    if not MIN_ROWS <= lo < hi:
        raise argparse.ArgumentTypeError(f"{text!r}: need {MIN_ROWS} <= LO < HI")
    return lo, hi


def positive(text):
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: need at least 1")
    return n


p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--seed", type=int, default=1)
p.add_argument("--series", type=positive, default=15)
p.add_argument("--hourly-rows", type=row_range, default="150:400")
p.add_argument("--minute-rows", type=row_range, default="400:1200")
p.add_argument("--single", action="store_true", help="one incident per series instead of 2-5")
a = p.parse_args()
rng = random.Random(a.seed)
hourly_rows, minute_rows = a.hourly_rows, a.minute_rows
os.makedirs(f"{a.out}/labels", exist_ok=True)
os.makedirs(f"{a.out}/config", exist_ok=True)
labels = {}
T0 = datetime.datetime(2024, 1, 1)


def write(cat, name, step_min, values, starts):
    os.makedirs(f"{a.out}/data/{cat}", exist_ok=True)
    ts = [T0 + datetime.timedelta(minutes=step_min * i) for i in range(len(values))]
    with open(f"{a.out}/data/{cat}/{name}.csv", "w") as f:
        f.write("timestamp,value\n")
        for t, v in zip(ts, values):
            f.write(f"{t:%Y-%m-%d %H:%M:%S},{v:.6g}\n")
    n, half = len(values), int(0.1 * len(values) / len(starts)) // 2
    labels[f"{cat}/{name}.csv"] = [
        [f"{ts[max(0, s - half)]:%Y-%m-%d %H:%M:%S}.000000",
         f"{ts[min(n - 1, s + half)]:%Y-%m-%d %H:%M:%S}.000000"]
        for s in starts
    ]


def incident_starts(n, k):
    lo = int(0.2 * n)
    seg = (n - lo) // k
    return [lo + i * seg + rng.randrange(seg // 4, 3 * seg // 4) for i in range(k)]


def inside(i, starts, duration):
    return any(s <= i < s + duration for s in starts)


def poisson(lam):
    # Knuth's multiplication method: fine for the small rates used here.
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod >= limit:
        k += 1
        prod *= rng.random()
    return k


for s in range(a.series):
    hourly = s % 3 == 0
    step, period = (60, 24) if hourly else (1, 1440)
    n = rng.randrange(*(hourly_rows if hourly else minute_rows))
    k = 1 if a.single else rng.randrange(2, 6)
    day = [1 + math.sin(2 * math.pi * i / period) for i in range(n)]

    base, starts, dur = rng.uniform(50, 2000), incident_starts(n, k), rng.randrange(3, 30)
    factor = rng.choice([0.3, 2.5])  # an outage's drop or a surge
    rate = []
    for i in range(n):
        lam = base * (0.6 + 0.4 * day[i]) * (factor if inside(i, starts, dur) else 1)
        rate.append(max(0.0, rng.gauss(lam, 2 * math.sqrt(lam))))
    write("rate", f"rate{s}", step, rate, starts)

    base, starts, dur = rng.uniform(5, 200), incident_starts(n, k), rng.randrange(3, 30)
    latency = [base * math.exp(rng.gauss(0, 0.15)) * (0.9 + 0.1 * day[i])
               * (3 if inside(i, starts, dur) else 1) for i in range(n)]
    write("latency", f"lat{s}", step, latency, starts)

    lam0, starts, dur = rng.uniform(0.05, 1.0), incident_starts(n, k), rng.randrange(2, 15)
    crashes = [poisson(lam0 * 10 + 3 if inside(i, starts, dur) else lam0) for i in range(n)]
    write("crash", f"crash{s}", step, crashes, starts)

    starts, dur, depth = incident_starts(n, k), rng.randrange(2, 20), rng.uniform(0.02, 0.2)
    avail = [1 - abs(rng.gauss(0, 0.002)) - (depth if inside(i, starts, dur) else 0)
             for i in range(n)]
    write("avail", f"avail{s}", step, avail, starts)

with open(f"{a.out}/labels/combined_windows.json", "w") as f:
    json.dump(labels, f, indent=1)
# NAB's three cost profiles (Lavin & Ahmad 2015), as config/profiles.json spells them.
profiles = {
    name: {"CostMatrix": {"tpWeight": 1.0, "fnWeight": fn, "fpWeight": fp, "tnWeight": 1.0}}
    for name, fn, fp in [
        ("standard", 1.0, 0.11),
        ("reward_low_FP_rate", 1.0, 0.22),
        ("reward_low_FN_rate", 2.0, 0.11),
    ]
}
with open(f"{a.out}/config/profiles.json", "w") as f:
    json.dump(profiles, f, indent=1)
