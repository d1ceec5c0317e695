"""Provisioning with SPDK's client as SPDK's guides write it, refusals that name the
parameter, and every parameter the client can send checked against Lamina's catalogue."""

import contextlib
import json
import os
import shlex

from harness import HERE, HOSTNQN, LaminaTest, figure


class ProvisioningTests(LaminaTest):
    def test_readme_provisioning_example_runs_unchanged(self):
        """The README's SPDK-style sequence, line by line, against `lamina serve` as the quick
        start runs it (only the data directory and the port are this test's own)."""
        t = self.start()
        lines = readme_example()
        self.assertGreater(len(lines), 5)
        for args in lines:
            t.cli(*[str(t.port) if a == "4420" else a for a in args])
        nqn = "nqn.2016-06.io.spdk:cnode1"
        tr = json.loads(t.cli("nvmf_get_transports").stdout)
        self.assertEqual(len(tr), 1)
        self.assertEqual((tr[0]["max_io_qpairs_per_ctrlr"], tr[0]["in_capsule_data_size"]),
                         (8, 8192))
        sub = [s for s in json.loads(t.cli("nvmf_get_subsystems").stdout) if s["nqn"] == nqn][0]
        self.assertEqual([n["nsid"] for n in sub["namespaces"]], [1, 2])
        self.assertEqual(sub["serial_number"], "SPDK00000000000001")
        for nsid in (1, 2):
            self.io(t, nqn, nsid)
        # The first line of every provisioning script again, once hosts have come and gone.
        t.cli(*lines[0])
        t.stop()

    def test_spdk_lvol_guide_on_an_aio_bdev(self):
        """SPDK's lvol guide on a file-backed bdev: lvstore, thin lvol, snapshot, clone, resize,
        rename, inflate, export."""
        t = self.start("--no-default")
        nqn = "nqn.2016-06.io.spdk:cnode2"
        img = os.path.join(t.data, "aio0.img")
        with open(img, "wb") as f:
            f.truncate(256 << 20)
        for cmd in [
            ["nvmf_create_transport", "-t", "TCP"],
            ["bdev_aio_create", img, "aio0", "4096"],
            ["bdev_lvol_create_lvstore", "aio0", "lvs1"],
            ["bdev_lvol_create", "-l", "lvs1", "lvol1", "32", "-t"],
            ["bdev_lvol_snapshot", "lvs1/lvol1", "snap1"],
            ["bdev_lvol_clone", "lvs1/snap1", "clone1"],
            ["bdev_lvol_resize", "lvs1/lvol1", "64"],
            ["bdev_lvol_rename", "lvs1/clone1", "clone2"],
            ["bdev_lvol_inflate", "lvs1/clone2"],
            ["nvmf_create_subsystem", nqn, "-a"],
            ["nvmf_subsystem_add_ns", nqn, "lvs1/lvol1"],
            ["nvmf_subsystem_add_listener", nqn, "-t", "tcp", "-a", "127.0.0.1", "-s", t.port],
            ["nvmf_subsystem_add_host", nqn, HOSTNQN],
        ]:
            t.cli(*cmd)
        lvols = {lv["name"]: lv for lv in json.loads(t.cli("bdev_lvol_get_lvols").stdout)}
        self.assertEqual(set(lvols), {"lvol1", "snap1", "clone2"})
        self.assertTrue(lvols["snap1"]["is_snapshot"])
        self.io(t, nqn, 1)
        t.stop()

    def test_refused_parameters_are_named(self):
        t = self.start()
        cases = [
            (["nvmf_create_transport", "-t", "TCP", "-z"], "zcopy"),
            (["nvmf_create_transport", "-t", "TCP", "-f"], "dif_insert_or_strip"),
            (["nvmf_create_subsystem", "nqn.2016-06.io.spdk:x", "-r"], "ana_reporting"),
            (["nvmf_subsystem_add_ns", "nqn.2026-11.io.lamina:default", "lvs0/vol0", "-a", "7"],
             "anagrpid"),
            (["nvmf_subsystem_add_listener", "nqn.2026-11.io.lamina:default", "-t", "tcp", "-a",
              "127.0.0.1", "-s", t.port, "--secure-channel"], "secure_channel"),
            (["bdev_malloc_create", "-b", "M", "-m", "8", "16", "512"], "md_size"),
            (["bdev_aio_create", "-r", os.path.join(t.data, "lvs0.img"), "ro"], "readonly"),
        ]
        for args, name in cases:
            r = t.cli(*args, check=False)
            self.assertNotEqual(r.returncode, 0, f"{args} was accepted")
            self.assertIn(name, r.stdout + r.stderr, f"{args}: {r.stdout}{r.stderr}")
        figure("refusals_named", len(cases))
        t.stop()

    def test_every_parameter_the_client_can_send_is_known(self):
        """Builds, with spdk-rpc's own argument parser and a dry-run client, every request it
        can send for each method Lamina has (each option on its own), and checks each
        parameter against Lamina's catalogue (`lamina_get_method_params`)."""
        from spdk import spdk_rpc
        from spdk.rpc.client import JSONRPCDryRunClient

        t = self.start()
        catalogue = t.call("lamina_get_method_params")
        parser, subparsers = spdk_rpc.create_parser()
        spdk_rpc.suppress_cli_prints()
        requests = []

        class Capture(JSONRPCDryRunClient):
            def call(self, method, params=None):
                requests.append((method, params or {}))

        def value_for(action):
            if action.choices:
                return str(list(action.choices)[0])
            if action.type is int or action.type is float:
                return "1"
            return "nqn.2016-06.io.spdk:x" if "nqn" in action.dest else "x1"

        unknown, built = [], 0
        quiet = open(os.devnull, "w")  # argparse's usage lines for variants it refuses
        self.addCleanup(quiet.close)
        for name, sub in subparsers.choices.items():
            if name not in catalogue:
                continue
            positional = [value_for(a) for a in sub._actions
                          if not a.option_strings and a.dest != "help"]
            options = [a for a in sub._actions if a.option_strings and a.dest != "help"]
            variants = [[]]
            for a in options:
                flag = a.option_strings[-1]
                variants.append([flag] if a.nargs == 0 else [flag, value_for(a)])
            for extra in variants:
                try:
                    with contextlib.redirect_stderr(quiet), contextlib.redirect_stdout(quiet):
                        args = parser.parse_args([name, *positional, *extra])
                except SystemExit:
                    continue
                args.client = Capture()
                try:
                    with contextlib.redirect_stderr(quiet), contextlib.redirect_stdout(quiet):
                        args.func(args)
                except (SystemExit, Exception):  # noqa: BLE001 a client-side check refused it
                    continue
                built += 1
            for method, params in requests:
                unknown += [f"{method}: {p}" for p in missing(catalogue.get(method, {}), params)]
            requests.clear()
        self.assertEqual(unknown, [], "parameters SPDK's client sends that Lamina does not know")
        self.assertGreater(built, 150)
        figure("client_requests_checked", built)
        t.stop()


def readme_example():
    """The `spdk-rpc` lines of the README's provisioning example, as argument lists."""
    with open(os.path.join(HERE, "..", "..", "README.md")) as f:
        text = f.read()
    block = text.split("<!-- provisioning example:", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [shlex.split(line)[3:] for line in block.splitlines()
            if line.startswith("spdk-rpc -s $S ")]


def missing(catalogue, params, path=""):
    out = []
    for k, v in params.items():
        if k not in catalogue:
            out.append(path + k)
        elif isinstance(v, dict) and isinstance(catalogue[k], dict) and "object" in catalogue[k]:
            out += missing(catalogue[k]["object"], v, f"{path}{k}.")
    return out
