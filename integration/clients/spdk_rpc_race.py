"""The seed race of Lamina's origin (an lvol deleted while another request lists lvols:
spdk#3505), driven through SPDK's own client: processes creating, exporting, snapshotting,
cloning, unexporting and deleting lvols race processes listing lvols, lvstores, bdevs and
subsystems; every answer must be well formed, the target must live, and the lvstore must check
consistent afterwards. An lvol must be deletable as soon as nvmf_subsystem_remove_ns has
answered, even while a subsystem listing still holds its namespace."""

import multiprocessing
import os
import time

DEFAULT_NQN = "nqn.2026-11.io.lamina:default"

from harness import LaminaTest, figure
from spdk.rpc.client import JSONRPCClient, JSONRPCException

SECONDS = float(os.environ.get("LAMINA_RACE_SECONDS", "15"))


def mutate(sock, worker, until, out):
    made = 0
    errors = []
    with JSONRPCClient(sock, timeout=60) as c:
        i = 0
        while time.time() < until:
            base = f"race{worker}_{i}"
            try:
                c.call("bdev_lvol_create", {"lvs_name": "lvs0", "lvol_name": base,
                                            "size_in_mib": 4, "thin_provision": True})
                nsid = c.call("nvmf_subsystem_add_ns", {"nqn": DEFAULT_NQN,
                                                        "namespace": {"bdev_name": f"lvs0/{base}"}})
                c.call("bdev_lvol_snapshot", {"lvol_name": f"lvs0/{base}",
                                              "snapshot_name": f"{base}_s"})
                c.call("bdev_lvol_clone", {"snapshot_name": f"lvs0/{base}_s",
                                           "clone_name": f"{base}_c"})
                c.call("nvmf_subsystem_remove_ns", {"nqn": DEFAULT_NQN, "nsid": nsid})
                for name in (f"{base}_c", base, f"{base}_s"):
                    c.call("bdev_lvol_delete", {"name": f"lvs0/{name}"})
                made += 8
            except JSONRPCException as e:
                errors.append(f"{base}: {e.message}")
                break
            i += 1
    out.put(("mutate", made, errors))


def check_lvols(v):
    for lv in v:
        assert lv["name"] and lv["uuid"] and lv["lvs"]["name"] == "lvs0", lv
        assert isinstance(lv["num_allocated_clusters"], int), lv


def check_stores(v):
    for s in v:
        assert 0 <= s["free_clusters"] <= s["total_data_clusters"], s


def check_bdevs(v):
    for b in v:
        assert b["name"] and b["num_blocks"] > 0 and b["block_size"] > 0, b


def check_subsystems(v):
    for s in v:
        assert s["nqn"], s


LISTINGS = [("bdev_lvol_get_lvols", check_lvols), ("bdev_lvol_get_lvstores", check_stores),
            ("bdev_get_bdevs", check_bdevs), ("nvmf_get_subsystems", check_subsystems)]


def listen(sock, which, until, out):
    calls, errors = 0, []
    method, check = LISTINGS[which]
    with JSONRPCClient(sock, timeout=60) as c:
        while time.time() < until:
            try:
                check(c.call(method))
                calls += 1
            except (JSONRPCException, AssertionError, KeyError, TypeError) as e:
                errors.append(f"{method}: {e}")
                break
    out.put((method, calls, errors))


class RaceTests(LaminaTest):
    def test_deletes_race_listings_through_spdk_client(self):
        t = self.start()
        until = time.time() + SECONDS
        out = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=mutate, args=(t.sock, w, until, out))
                 for w in range(2)]
        procs += [multiprocessing.Process(target=listen, args=(t.sock, w, until, out))
                  for w in range(len(LISTINGS))]
        for p in procs:
            p.start()
        results = [out.get(timeout=SECONDS + 120) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        errors = [e for _, _, errs in results for e in errs]
        self.assertEqual(errors, [], t.tail())
        totals = {}
        for name, n, _ in results:
            totals[name] = totals.get(name, 0) + n
        for name, n in sorted(totals.items()):
            figure(f"race_{name}", n)
            self.assertGreater(n, 0, name)
        left = [lv["name"] for lv in t.call("bdev_lvol_get_lvols") if lv["name"].startswith("race")]
        self.assertEqual(left, [])
        check = t.call("bdev_lvol_check_lvstore", {"lvs_name": "lvs0"})
        self.assertTrue(check[0]["consistent"] if isinstance(check, list) else check["consistent"],
                        check)
        t.stop()
