#!/usr/bin/env python3
"""Writes the broken-pod meshes of docs/replay-results-sim.md ("Broken pods and full peers"):
one pod or subset failing while its peers are near capacity, where cutting it off can overload
the rest.

    scripts/broken-pod-meshes.py OUT_DIR
    homeostat replay --baseline istio,tuned --format json OUT_DIR/r*.yaml > ejection.json
    homeostat replay --baseline istio,flagger --format json OUT_DIR/c*.yaml > canary.json

`rRATE-eERR`: `api` on two pods (16 slots, gamma service time of mean 25 ms: 640 req/s a pod)
at RATE req/s; from minute 10 pod 1 fails a share ERR of its requests with 503.
`cRATE-eERR-CODE`: `checkout` split 50/50 between `stable` and `canary`, two pods each (16
slots, lognormal service time of median 30 ms); from minute 10 the canary fails a share ERR of
its requests with CODE. 40 minutes each, every policy in Enforce with idempotent requests.
"""
import pathlib
import sys

EJECTION = """name: r{rate}-e{err}
duration: 40m
seed: 5
topology:
  services:
    - name: gateway
      subsets: [{{ name: v1, pods: 3 }}]
      concurrency: 64
      serviceTime: {{ lognormal: {{ median: 2ms, sigma: 0.3 }} }}
      calls: [{{ service: api }}]
    - name: api
      subsets: [{{ name: v1, pods: 2 }}]
      concurrency: 16
      queue: 64
      serviceTime: {{ gamma: {{ mean: 25ms, shape: 2.0 }} }}
traffic:
  entries: [{{ service: gateway }}]
  profile: {{ constant: {{ rate: {rate} }} }}
faults:
  - {{ name: api pod 1 goes bad, at: 10m, service: api, pod: 1, errorRate: {err}, errorCode: 503 }}
policies:
  - metadata: {{ name: api }}
    spec:
      mode: Enforce
      target: {{ service: api }}
      controls: {{ loadBalancing: {{ enabled: false }}, retries: {{ idempotent: true }} }}
      objectives: {{ successRate: 0.999, latencyP99: 250ms }}
"""

CANARY = """name: c{rate}-e{err}-{code}
duration: 40m
seed: 7
topology:
  services:
    - name: frontend
      subsets: [{{ name: v1, pods: 4 }}]
      concurrency: 64
      queue: 128
      serviceTime: {{ lognormal: {{ median: 2ms, sigma: 0.4 }} }}
      calls: [{{ service: checkout }}]
    - name: checkout
      subsets:
        - {{ name: stable, pods: 2, weight: 50 }}
        - {{ name: canary, pods: 2, weight: 50 }}
      concurrency: 16
      queue: 64
      serviceTime: {{ lognormal: {{ median: 30ms, sigma: 0.5 }} }}
traffic:
  entries: [{{ service: frontend }}]
  profile: {{ constant: {{ rate: {rate} }} }}
faults:
  - {{ name: canary goes bad, at: 10m, service: checkout, subset: canary, errorRate: {err}, errorCode: {code} }}
policies:
  - metadata: {{ name: checkout }}
    spec:
      mode: Enforce
      target: {{ service: checkout, subsets: [stable, canary] }}
      controls: {{ retries: {{ idempotent: true }} }}
      objectives: {{ successRate: 0.999, latencyP99: 300ms }}
"""


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = pathlib.Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for rate in (500, 700, 900, 1100):
        for err in (0.2, 0.6, 0.95):
            (out / f"r{rate}-e{err}.yaml").write_text(EJECTION.format(rate=rate, err=err))
    for rate in (700, 1100, 1400):
        for err in (0.2, 0.5):
            for code in (500, 503):
                (out / f"c{rate}-e{err}-{code}.yaml").write_text(
                    CANARY.format(rate=rate, err=err, code=code)
                )


if __name__ == "__main__":
    main()
