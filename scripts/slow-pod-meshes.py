#!/usr/bin/env python3
"""Writes the slow-pod meshes of docs/governor.md ("Two pods, and peers without room"): one pod
of two, three or four turning slower while its peers may or may not have room for its requests.

    scripts/slow-pod-meshes.py OUT_DIR
    homeostat replay --baseline istio --format json OUT_DIR/*.yaml > slow.json

`pPODS-rRATE-xSLOW`: `api` on PODS pods (16 slots, gamma service time of mean 25 ms: 640 req/s
a pod) at RATE req/s; from minute 10 of 30 pod 1 serves SLOW times slower. Objective p99 250 ms,
the policy in Enforce with idempotent requests. Meshes whose rate reaches the pods' capacity
are left out (nothing serves them).
"""
import pathlib
import sys

MESH = """name: p{pods}-r{rate}-x{slow}
duration: 30m
seed: 11
topology:
  services:
    - name: gateway
      subsets: [{{ name: v1, pods: 3 }}]
      concurrency: 64
      serviceTime: {{ lognormal: {{ median: 2ms, sigma: 0.3 }} }}
      calls: [{{ service: api }}]
    - name: api
      subsets: [{{ name: v1, pods: {pods} }}]
      concurrency: 16
      queue: 64
      timeout: 3s
      serviceTime: {{ gamma: {{ mean: 25ms, shape: 2.0 }} }}
traffic:
  entries: [{{ service: gateway }}]
  profile: {{ constant: {{ rate: {rate} }} }}
faults:
  - {{ name: api pod 1 slows down, at: 10m, service: api, pod: 1, slowdown: {slow} }}
policies:
  - metadata: {{ name: api }}
    spec:
      mode: Enforce
      target: {{ service: api }}
      controls: {{ loadBalancing: {{ enabled: false }}, retries: {{ idempotent: true }} }}
      objectives: {{ successRate: 0.999, latencyP99: 250ms }}
"""


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/slow-pod-meshes.py OUT_DIR")
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for pods in (2, 3, 4):
        for rate in (300, 500, 700, 900, 1200):
            if rate >= pods * 640:
                continue
            for slow in ("1.5", "2", "3", "4", "8"):
                name = f"p{pods}-r{rate}-x{slow}.yaml"
                (out / name).write_text(MESH.format(pods=pods, rate=rate, slow=slow))
                count += 1
    print(f"{count} meshes in {out}")


if __name__ == "__main__":
    main()
