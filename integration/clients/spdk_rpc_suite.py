#!/usr/bin/env python3
"""SPDK's own JSON-RPC client (PyPI package `spdk`: `spdk.rpc` and the `spdk-rpc` command)
against a real `lamina serve`.

Nothing here was written with Lamina's code: the requests are the ones SPDK's client builds.
Each test starts its own target on a fresh data directory and a free port. Run it with
`integration/clients/run-spdk-rpc.sh` (which makes the virtual environment), or directly:

    PYTHON integration/clients/spdk_rpc_suite.py --lamina build/release/lamina \
        --perf build/release/lamina-perf [-v] [-k PATTERN]

Figures (calls made, listings checked) are printed as `FIGURE name=value` lines.
"""

import argparse
import multiprocessing
import os
import sys
import unittest

import harness
from spdk_rpc_config import ConfigTests  # noqa: F401
from spdk_rpc_daily import DailyTests  # noqa: F401
from spdk_rpc_keyring import DhchapKeyTests, KeyringTests, MaskingTests, TlsTests  # noqa: F401
from spdk_rpc_provisioning import ProvisioningTests  # noqa: F401
from spdk_rpc_race import RaceTests  # noqa: F401


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lamina", required=True)
    ap.add_argument("--perf", required=True)
    ap.add_argument("-v", action="store_true")
    ap.add_argument("-k", dest="pattern", action="append")
    a = ap.parse_args()
    harness.PATHS["lamina"] = os.path.abspath(a.lamina)
    harness.PATHS["perf"] = os.path.abspath(a.perf)
    argv = [sys.argv[0]] + (["-v"] if a.v else []) + sum((["-k", p] for p in a.pattern or []), [])
    multiprocessing.set_start_method("fork")
    unittest.main(module=__name__, argv=argv)


if __name__ == "__main__":
    main()
