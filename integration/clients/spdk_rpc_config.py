"""`save_config` and `load_config` with SPDK's client: Lamina's configuration saved by
`spdk-rpc save_config` (which assembles it from `framework_get_subsystems` and
`framework_get_config`) loads into a fresh Lamina and saves back identical, and a configuration
saved by SPDK's own nvmf_tgt (v24.01, `testdata/`) loads and takes effect."""

import json
import os

from harness import HERE, HOSTNQN, LaminaTest

NQN = "nqn.2016-06.io.spdk:cnode1"
UUID = "5b0e9a64-3c2f-4f36-9d9a-0d1e7b6f2a11"


def normalized(text):
    """The saved configuration, parsed, with each subsystem's calls in a stable order."""
    cfg = json.loads(text)
    return {s["subsystem"]: s["config"] for s in cfg["subsystems"]}


class ConfigTests(LaminaTest):
    def provision(self, t):
        img = os.path.join(t.data, "aio1.img")
        with open(img, "wb") as f:
            f.truncate(64 << 20)
        key = os.path.join(t.tmp, "key0")
        with open(key, "w") as f:
            f.write("NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:\n")
        os.chmod(key, 0o600)
        for cmd in [
            ["keyring_file_add_key", "key0", key],
            ["nvmf_set_max_subsystems", "-x", "64"],
            ["nvmf_set_config", "--dup-host-policy", "allow"],
            ["nvmf_create_transport", "-t", "TCP", "-c", "4096", "-m", "4"],
            ["bdev_malloc_create", "-b", "Malloc0", "-u", UUID, "32", "4096"],
            ["bdev_null_create", "Null0", "64", "512"],
            ["bdev_aio_create", img, "aio1", "512"],
            ["nvmf_create_subsystem", NQN, "-a", "-s", "SN0001", "-d", "Model 1", "-i", "10",
             "-I", "20", "-m", "8"],
            ["nvmf_subsystem_add_ns", NQN, "Malloc0", "-n", "3"],
            ["nvmf_subsystem_add_ns", NQN, "Null0"],
            ["nvmf_subsystem_add_ns", NQN, "aio1", "-n", "7",
             "-g", "00112233445566778899AABBCCDDEEFF"],
            ["nvmf_subsystem_add_listener", NQN, "-t", "tcp", "-a", "127.0.0.1", "-s", t.port],
            ["nvmf_subsystem_add_host", NQN, HOSTNQN],
            ["nvmf_discovery_add_referral", "-t", "tcp", "-a", "127.0.0.9", "-s", "8009"],
        ]:
            t.cli(*cmd)
        t.call("nvmf_set_crdt", {"crdt1": 5, "crdt2": 10, "crdt3": 20})
        t.call("nvmf_set_config", {"discovery_filter": "address,svcid"})
        t.call("sock_impl_set_options", {"impl_name": "posix", "recv_buf_size": 1 << 20})

    def test_lamina_config_round_trips_through_spdk_save_and_load(self):
        a = self.start("--no-default")
        self.provision(a)
        saved = a.cli("save_config").stdout
        cfg = normalized(saved)
        self.assertEqual(sorted(cfg), ["bdev", "keyring", "nvmf", "sock"])
        self.assertEqual(cfg["keyring"], [{"method": "keyring_file_add_key",
                                           "params": {"name": "key0",
                                                      "path": os.path.join(a.tmp, "key0")}}])
        self.assertIn("nvmf_discovery_add_referral", [c["method"] for c in cfg["nvmf"]])
        set_config = [c for c in cfg["nvmf"] if c["method"] == "nvmf_set_config"][0]
        self.assertEqual(set_config["params"]["dup_host_policy"], "allow")
        a.stop()

        # b may open a's aio file, which the saved configuration names.
        b = self.start("--no-default", "--allow-path", a.data)
        # The listener of the saved configuration names a's port: b must listen there.
        saved_b = saved.replace(f'"{a.port}"', f'"{b.port}"')
        b.cli("load_config", stdin=saved_b)
        self.assertEqual(normalized(b.cli("save_config").stdout), normalized(saved_b))
        for nsid in (3, 7):
            self.io(b, NQN, nsid)
        sub = [s for s in b.call("nvmf_get_subsystems") if s["nqn"] == NQN][0]
        self.assertEqual((sub["min_cntlid"], sub["max_cntlid"]), (10, 20))
        ctrls = b.call("nvmf_get_subsystems")
        self.assertTrue(ctrls)
        b.stop()

        # And it is what b comes back with after a restart.
        c = self.start("--listen", f"127.0.0.1:{b.port}", "--allow-path", a.data, data=b.data)
        self.assertEqual(normalized(c.cli("save_config").stdout), normalized(saved_b))
        c.stop()

    def test_a_configuration_saved_by_spdk_loads_and_takes_effect(self):
        t = self.start("--no-default")
        with open(os.path.join(HERE, "testdata", "spdk-v24.01-save_config.json")) as f:
            text = f.read().replace('"4520"', f'"{t.port}"')
        t.cli("load_config", stdin=text)
        bdevs = {b["name"]: b for b in t.call("bdev_get_bdevs")}
        self.assertEqual(bdevs["Malloc0"]["uuid"], "f60e7e7b-178b-4f1a-a6fa-ed41325af8d2")
        self.assertEqual(bdevs["Null0"]["num_blocks"], 131072)
        subs = {s["nqn"]: s for s in t.call("nvmf_get_subsystems")}
        c1, c2 = subs[NQN], subs["nqn.2016-06.io.spdk:cnode2"]
        self.assertEqual([(n["nsid"], n["uuid"]) for n in c1["namespaces"]],
                         [(5, "5dfa7feb-0fe6-47f7-bc10-3101ed4ec272")])
        self.assertEqual(c1["serial_number"], "SPDK00000000000001")
        self.assertEqual((c2["min_cntlid"], c2["max_cntlid"], c2["allow_any_host"]),
                         (100, 200, False))
        self.assertEqual([h["nqn"] for h in c2["hosts"]], [HOSTNQN])
        tr = t.call("nvmf_get_transports")[0]
        self.assertEqual((tr["io_unit_size"], tr["max_io_qpairs_per_ctrlr"],
                          tr["max_io_size"]), (16384, 8, 131072))
        self.io(t, NQN, 5, verify=False)  # Null0 keeps nothing
        t.stop()
        # The same file given to `lamina serve --config` at start-up.
        path = os.path.join(t.tmp, "spdk.json")
        with open(path, "w") as f:
            f.write(text.replace(f'"{t.port}"', '"0"'))
        s = self.start("--config", path)
        self.assertIn("nqn.2016-06.io.spdk:cnode2",
                      [x["nqn"] for x in s.call("nvmf_get_subsystems")])
        s.stop()
