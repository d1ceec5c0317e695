"""The methods operators use daily, driven with SPDK's `spdk-rpc` command after real I/O:
I/O statistics and their resets, the latency histogram decoded as SPDK's layout, the log
filter changed at run time (seen in the target's own log), notifications, resizes, the
runtime description, and SPDK's `bdev_get_bdevs` fields."""

import base64
import json
import os
import struct

from harness import LaminaTest, figure
from spdk.rpc.client import JSONRPCException

DEFAULT_NQN = "nqn.2026-11.io.lamina:default"


def out(r):
    return json.loads(r.stdout)


class DailyTests(LaminaTest):
    def lvol_and_base(self, t):
        lvol = [b for b in out(t.cli("bdev_get_bdevs")) if b["product_name"] == "Logical Volume"][0]
        return lvol["name"], lvol["driver_specific"]["lvol"]["base_bdev"]

    def test_iostat_counts_the_io_and_resets(self):
        t = self.start()
        lvol, base = self.lvol_and_base(t)
        self.io(t, DEFAULT_NQN, 1)
        stats = {b["name"]: b for b in out(t.cli("bdev_get_iostat"))["bdevs"]}
        for name in (lvol, base):
            s = stats[name]
            self.assertGreater(s["num_read_ops"], 0, s)
            self.assertGreater(s["num_write_ops"], 0, s)
            self.assertEqual(s["bytes_written"] % 512, 0)
            self.assertLessEqual(s["min_write_latency_ticks"], s["max_write_latency_ticks"])
            self.assertLessEqual(s["max_write_latency_ticks"], s["write_latency_ticks"])
        figure("daily_iostat_write_ops", stats[lvol]["num_write_ops"])
        # Read and reset in one call, as SPDK's --reset-mode does; the next read starts at 0.
        got = out(t.cli("bdev_get_iostat", "--names", lvol, "--reset-mode", "all"))["bdevs"]
        self.assertEqual(got[0]["num_write_ops"], stats[lvol]["num_write_ops"])
        again = out(t.cli("bdev_get_iostat", "--names", lvol))["bdevs"][0]
        self.assertEqual((again["num_write_ops"], again["num_read_ops"]), (0, 0))
        t.cli("bdev_reset_iostat", "-b", "lvs0/vol0", "-m", "error")
        t.cli("bdev_reset_iostat")
        self.assertEqual(out(t.cli("bdev_get_iostat", "--names", base))["bdevs"][0]["bytes_read"], 0)
        r = t.cli("bdev_get_iostat", "--names", "nope", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nope", r.stdout + r.stderr)
        t.stop()

    def test_histogram_in_spdks_layout(self):
        t = self.start()
        lvol, _ = self.lvol_and_base(t)
        t.cli("bdev_enable_histogram", "--histogram", "-o", "read", "lvs0/vol0")
        self.io(t, DEFAULT_NQN, 1)
        h = out(t.cli("bdev_get_histogram", lvol))
        buckets = base64.b64decode(h["histogram"])
        per_range = 1 << h["granularity"]
        self.assertEqual(len(buckets), 8 * per_range * (h["max_range"] - h["min_range"] + 1))
        counts = struct.unpack(f"<{len(buckets) // 8}Q", buckets)
        reads = out(t.cli("bdev_get_iostat", "--names", lvol))["bdevs"][0]["num_read_ops"]
        self.assertEqual(sum(counts), reads, "the histogram counts the reads, only them")
        figure("daily_histogram_reads", reads)
        t.cli("bdev_enable_histogram", "--no-histogram", lvol)
        self.assertNotEqual(t.cli("bdev_get_histogram", lvol, check=False).returncode, 0)
        t.stop()

    def test_log_filter_changes_at_run_time(self):
        t = self.start()  # --log-level warn
        self.assertEqual(out(t.cli("log_get_level")), "WARNING")
        self.assertEqual(out(t.cli("log_get_print_level")), "WARNING")

        def failing_call_logged():
            before = t.tail().count("rpc failed")
            t.cli("bdev_get_bdevs", "-b", "nope", check=False)
            return t.tail().count("rpc failed") > before

        self.assertFalse(failing_call_logged(), "debug lines are off at warn")
        t.cli("log_set_flag", "rpc")
        self.assertTrue(out(t.cli("log_get_flags"))["rpc"])
        self.assertTrue(failing_call_logged(), "the rpc flag turns the RPC modules to debug")
        t.cli("log_clear_flag", "rpc")
        self.assertFalse(failing_call_logged())
        t.cli("log_set_print_level", "DEBUG")
        self.assertEqual(out(t.cli("log_get_print_level")), "DEBUG")
        self.assertTrue(failing_call_logged(), "the print level alone admits debug lines")
        t.cli("log_set_print_level", "ERROR")
        t.cli("log_set_level", "ERROR")
        self.assertFalse(failing_call_logged())
        self.assertEqual(out(t.cli("log_get_level")), "ERROR")
        with self.assertRaises(JSONRPCException) as e:
            t.call("log_set_flag", {"flag": "iscsi"})
        self.assertIn("iscsi", str(e.exception))
        t.cli("log_set_flag", "all")
        self.assertTrue(all(out(t.cli("log_get_flags")).values()))
        t.stop()

    def test_notifications_resizes_runtime_and_bdev_fields(self):
        t = self.start()
        self.assertEqual(out(t.cli("notify_get_types")), ["bdev_register", "bdev_unregister"])
        start = len(out(t.cli("notify_get_notifications")))
        t.cli("bdev_null_create", "N0", "16", "512")
        t.cli("bdev_null_resize", "N0", "32")
        self.assertEqual(out(t.cli("bdev_get_bdevs", "-b", "N0"))[0]["num_blocks"], 65536)
        img = os.path.join(t.data, "aio1.img")
        with open(img, "wb") as f:
            f.truncate(8 << 20)
        t.cli("bdev_aio_create", img, "aio1", "4096")
        with open(img, "r+b") as f:
            f.truncate(16 << 20)
        t.cli("bdev_aio_rescan", "aio1")
        self.assertEqual(out(t.cli("bdev_get_bdevs", "-b", "aio1"))[0]["num_blocks"], 4096)
        t.cli("bdev_null_delete", "N0")
        events = out(t.cli("notify_get_notifications", "-i", start))
        self.assertEqual([(e["type"], e["ctx"]) for e in events],
                         [("bdev_register", "N0"), ("bdev_register", "aio1"),
                          ("bdev_unregister", "N0")])
        self.assertEqual(len(out(t.cli("notify_get_notifications", "-i", start, "-n", 1))), 1)
        b = out(t.cli("bdev_get_bdevs", "-b", "aio1"))[0]
        self.assertEqual(b["assigned_rate_limits"],
                         {"rw_ios_per_sec": 0, "rw_mbytes_per_sec": 0,
                          "r_mbytes_per_sec": 0, "w_mbytes_per_sec": 0})
        r = out(t.cli("framework_get_reactors"))
        self.assertGreaterEqual(len(r["reactors"]), 1)
        self.assertTrue(all(x["busy"] + x["idle"] > 0 for x in r["reactors"]))
        th = out(t.cli("thread_get_stats"))["threads"]
        self.assertEqual(len(th), len(r["reactors"]))
        figure("daily_reactors", len(r["reactors"]))
        t.stop()
