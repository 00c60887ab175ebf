#!/usr/bin/env python3
"""Writes the surge meshes of docs/replay-results-sim.md ("Surges of other sizes"): the built-in
`surge-5x` scenario with its surge, length, base rate and pod start-up varied, to see where
homeostat sits against the HPA sweep beyond the one built-in point.

    scripts/surge-meshes.py OUT_DIR
    homeostat replay --format json OUT_DIR/*.yaml > surges.json

`sF-dD-rR-pP`: `orders` (4 slots a pod, lognormal service time of median 40 ms; an HPA of
2..30 pods at 70 %) at R req/s; traffic × F from minute 15 for D minutes; pods ready P seconds
after they are created. One hour each, the policy as in `surge-5x`.
"""
import itertools
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
BASE = (HERE.parent / "simulator" / "scenarios" / "surge-5x.yaml").read_text()


def mesh(factor, minutes, rate, startup):
    name = f"s{factor}-d{minutes}-r{rate}-p{startup}"
    text = BASE
    for old, new in [
        ("name: surge-5x", f"name: {name}"),
        ("rate: 150", f"rate: {rate}"),
        ("surge: 5", f"surge: {factor}"),
        ("until: 35m", f"until: {15 + minutes}m"),
    ]:
        if old not in text:
            sys.exit(f"surge-5x.yaml no longer has {old!r}: update this script")
        text = text.replace(old, new, 1)
    return name, text + f"controlPlane: {{ podStartup: {startup}s }}\n"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for factor, minutes, rate, startup in itertools.product([2, 3, 5], [5, 20], [100, 300], [30, 90]):
        name, text = mesh(factor, minutes, rate, startup)
        (out / f"{name}.yaml").write_text(text)


if __name__ == "__main__":
    main()
