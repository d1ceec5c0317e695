#!/usr/bin/env python3
"""Checks, with SPDK's own RPC client (spdk-rpc, from PyPI package `spdk`), that configuration
Lamina keeps pending is part of what it reports as its configuration.

spdk-rpc's `save_config` is SPDK's client-side assembly (framework_get_subsystems, then
framework_get_config per subsystem), so this also proves those methods answer in SPDK's shape.

Usage:
  spdk_rpc_pending.py SPDK_RPC SOCKET --bdev NAME [--namespace NQN:NSID ...]

Passes (exit 0) when save_config holds a bdev_*_create entry for bdev NAME and an
nvmf_subsystem_add_ns entry for each NQN:NSID, while bdev_get_bdevs does not list NAME (a
pending bdev is not open). Prints what it checked; exits 1 naming what is wrong.
"""

import argparse
import json
import subprocess
import sys


def rpc(spdk_rpc, socket, *args):
    """Runs spdk-rpc and returns its JSON output."""
    cmd = [spdk_rpc, "-s", socket, "-t", "30", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {out.returncode}: {out.stderr.strip()}")
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError as e:
        sys.exit(f"FAIL: {' '.join(cmd)} printed no JSON ({e}): {out.stdout[:500]}")


def calls(config, subsystem):
    """The calls of one section of a save_config document."""
    for section in config.get("subsystems", []):
        if section.get("subsystem") == subsystem:
            return section.get("config") or []
    return []


def main():
    p = argparse.ArgumentParser()
    p.add_argument("spdk_rpc")
    p.add_argument("socket")
    p.add_argument("--bdev", required=True)
    p.add_argument("--namespace", action="append", default=[])
    a = p.parse_args()

    config = rpc(a.spdk_rpc, a.socket, "save_config")
    bdevs = [c for c in calls(config, "bdev")
             if c.get("method", "").startswith("bdev_") and c.get("method", "").endswith("_create")
             and c.get("params", {}).get("name") == a.bdev]
    if len(bdevs) != 1:
        sys.exit(f"FAIL: save_config holds {len(bdevs)} create entries for bdev {a.bdev}: "
                 f"{json.dumps(calls(config, 'bdev'))}")
    print(f"ok: save_config (spdk-rpc) keeps pending {bdevs[0]['method']} {a.bdev}: "
          f"{json.dumps(bdevs[0]['params'], sort_keys=True)}")

    for want in a.namespace:
        nqn, _, nsid = want.rpartition(":")
        found = [c for c in calls(config, "nvmf")
                 if c.get("method") == "nvmf_subsystem_add_ns"
                 and c.get("params", {}).get("nqn") == nqn
                 and str(c.get("params", {}).get("namespace", {}).get("nsid")) == nsid]
        if len(found) != 1:
            sys.exit(f"FAIL: save_config holds {len(found)} nvmf_subsystem_add_ns for {want}: "
                     f"{json.dumps(calls(config, 'nvmf'))}")
        print(f"ok: save_config (spdk-rpc) keeps pending namespace {nsid} of {nqn}")

    live = rpc(a.spdk_rpc, a.socket, "bdev_get_bdevs")
    names = [b.get("name") for b in live]
    if a.bdev in names:
        sys.exit(f"FAIL: bdev_get_bdevs lists {a.bdev}, which is pending (not open): {names}")
    print(f"ok: bdev_get_bdevs (spdk-rpc) does not list pending {a.bdev}: {names}")


if __name__ == "__main__":
    main()
