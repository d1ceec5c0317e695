"""The keyring through SPDK's client: `spdk-rpc keyring_file_add_key`, `keyring_get_keys` and
`keyring_file_remove_key` as SPDK's NVMe/TCP TLS guide uses them, SPDK's file rules enforced
with errors that name the problem, and the key's names (never its secret) kept across a
restart; DH-HMAC-CHAP keys on allow-list entries (`nvmf_subsystem_add_host --dhchap-key`,
`nvmf_subsystem_set_keys`) and the digests and groups allowed (`nvmf_set_config`)."""

import base64
import json
import os
import zlib

from harness import LaminaTest

# libnvme's SHA-256 TLS PSK test vector (interchange format, CRC included).
TLS_KEY = "NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"


def key_file(directory, name, text, mode):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, mode)
    return path


class KeyringTests(LaminaTest):
    def test_keys_with_spdk_rpc(self):
        t = self.start("--no-default")
        keys = os.path.join(t.tmp, "keys")
        os.mkdir(keys)
        good = key_file(keys, "key0", TLS_KEY, 0o600)
        loose = key_file(keys, "loose", TLS_KEY, 0o644)
        typo = key_file(keys, "typo", TLS_KEY.replace("LrZ:", "LrY:"), 0o600)

        t.cli("keyring_file_add_key", "key0", good)
        for path, words in [(loose, ["0644", "0600"]), (typo, ["CRC"]),
                            ("relative/key", ["absolute"])]:
            r = t.cli("keyring_file_add_key", "bad", path, check=False)
            self.assertNotEqual(r.returncode, 0, path)
            out = r.stdout + r.stderr
            for w in words:
                self.assertIn(w, out)
            self.assertNotIn("VRLbtn", out)
        r = t.cli("keyring_file_add_key", "key0", good, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already exists", r.stdout + r.stderr)

        listed = json.loads(t.cli("keyring_get_keys").stdout)
        self.assertEqual(listed, [{"name": "key0", "module": "keyring_file", "removed": False,
                                   "probed": False, "refcnt": 1, "path": good}])
        self.assertNotIn("VRLbtn", json.dumps(json.loads(t.cli("save_config").stdout)))

        t.stop()
        t2 = self.start("--no-default", data=t.data)
        self.assertEqual([k["name"] for k in json.loads(t2.cli("keyring_get_keys").stdout)],
                         ["key0"])
        t2.cli("keyring_file_remove_key", "key0")
        self.assertEqual(json.loads(t2.cli("keyring_get_keys").stdout), [])
        r = t2.cli("keyring_file_remove_key", "key0", check=False)
        self.assertNotEqual(r.returncode, 0)
        t2.stop()


def dhchap_key(seed):
    """A DH-HMAC-CHAP secret in its interchange format (CRC-32 of the key, little-endian)."""
    key = bytes((seed + i) % 256 for i in range(32))
    crc = zlib.crc32(key).to_bytes(4, "little")
    return "DHHC-1:00:" + base64.b64encode(key + crc).decode() + ":"


class DhchapKeyTests(LaminaTest):
    def test_host_keys_with_spdk_rpc(self):
        t = self.start("--no-default")
        nqn = "nqn.2016-06.io.spdk:chap"
        host = "nqn.2014-08.org.nvmexpress:uuid:7c8a9e1e-2f0b-4b0e-9a55-0e2b54a1c3d4"
        keys = os.path.join(t.tmp, "keys")
        os.mkdir(keys)
        for name, seed in [("chap0", 1), ("chap1", 2)]:
            t.cli("keyring_file_add_key", name, key_file(keys, name, dhchap_key(seed), 0o600))
        t.cli("nvmf_create_subsystem", nqn)
        r = t.cli("nvmf_subsystem_add_host", nqn, host, "--dhchap-key", "missing", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("missing", r.stdout + r.stderr)
        t.cli("nvmf_subsystem_add_host", nqn, host, "--dhchap-key", "chap0",
              "--dhchap-ctrlr-key", "chap1")
        subs = json.loads(t.cli("nvmf_get_subsystems").stdout)
        entry = [s for s in subs if s["nqn"] == nqn][0]["hosts"]
        self.assertEqual(entry, [{"nqn": host, "dhchap_key": "chap0", "dhchap_ctrlr_key": "chap1"}])
        t.cli("nvmf_subsystem_set_keys", nqn, host, "--dhchap-key", "chap1")
        subs = json.loads(t.cli("nvmf_get_subsystems").stdout)
        entry = [s for s in subs if s["nqn"] == nqn][0]["hosts"]
        self.assertEqual(entry, [{"nqn": host, "dhchap_key": "chap1"}])
        t.cli("nvmf_set_config", "--dhchap-digests", "sha384,sha512",
              "--dhchap-dhgroups", "null,ffdhe3072")
        saved = json.loads(t.cli("save_config").stdout)
        nvmf = [s for s in saved["subsystems"] if s["subsystem"] == "nvmf"][0]["config"]
        cfg = [c for c in nvmf if c["method"] == "nvmf_set_config"][0]["params"]
        self.assertEqual(cfg["dhchap_digests"], ["sha384", "sha512"])
        self.assertEqual(cfg["dhchap_dhgroups"], ["null", "ffdhe3072"])
        self.assertNotIn("DHHC-1", json.dumps(saved))
        r = t.cli("nvmf_set_config", "--dhchap-digests", "md5", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("dhchap_digests", r.stdout + r.stderr)
        t.stop()


class TlsTests(LaminaTest):
    def test_secure_channel_and_psk_with_spdk_rpc(self):
        """A TLS listener (`--secure-channel`) and a host's PSK (`--psk`) as SPDK's client
        sends them; listed, saved by name, and refused where they do not fit."""
        t = self.start("--no-default")
        nqn = "nqn.2016-06.io.spdk:tls"
        host = "nqn.2014-08.org.nvmexpress:uuid:3d4c5b6a-7f8e-4a9b-8c7d-6e5f4a3b2c1d"
        keys = os.path.join(t.tmp, "keys")
        os.mkdir(keys)
        t.cli("keyring_file_add_key", "tls0", key_file(keys, "tls0", TLS_KEY, 0o600))
        t.cli("keyring_file_add_key", "chap0", key_file(keys, "chap0", dhchap_key(3), 0o600))
        t.cli("nvmf_create_subsystem", nqn)
        t.cli("nvmf_subsystem_add_listener", nqn, "-t", "tcp", "-a", "127.0.0.1", "-s", "0",
              "--secure-channel")
        listeners = json.loads(t.cli("nvmf_subsystem_get_listeners", nqn).stdout)
        self.assertEqual([ln["secure_channel"] for ln in listeners], [True])
        port = listeners[0]["address"]["trsvcid"]
        # The port is a TLS one: the same address cannot also serve clear text.
        r = t.cli("nvmf_subsystem_add_listener", nqn, "-t", "tcp", "-a", "127.0.0.1", "-s",
                  port, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("secure_channel", r.stdout + r.stderr)
        # A DH-HMAC-CHAP secret is not a PSK.
        r = t.cli("nvmf_subsystem_add_host", nqn, host, "--psk", "chap0", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("psk", r.stdout + r.stderr)
        t.cli("nvmf_subsystem_add_host", nqn, host, "--psk", "tls0")
        subs = json.loads(t.cli("nvmf_get_subsystems").stdout)
        entry = [s for s in subs if s["nqn"] == nqn][0]["hosts"]
        self.assertEqual(entry, [{"nqn": host, "psk": "tls0"}])
        saved = json.loads(t.cli("save_config").stdout)
        calls = [c for s in saved["subsystems"] if s["subsystem"] == "nvmf" for c in s["config"]]
        adds = [c["params"] for c in calls if c["method"] == "nvmf_subsystem_add_listener"]
        self.assertEqual([a.get("secure_channel") for a in adds], [True])
        hosts = [c["params"] for c in calls if c["method"] == "nvmf_subsystem_add_host"]
        self.assertEqual(hosts, [{"nqn": nqn, "host": host, "psk": "tls0"}])
        self.assertNotIn("NVMeTLSkey", json.dumps(saved))
        t.stop()


class MaskingTests(LaminaTest):
    def test_namespace_masking_with_spdk_rpc(self):
        """`nvmf_subsystem_add_ns -i` (no_auto_visible), `nvmf_ns_add_host` and
        `nvmf_ns_remove_host` as SPDK's client sends them."""
        t = self.start()
        nqn = "nqn.2026-11.io.lamina:default"
        t.cli("bdev_lvol_create", "-l", "lvs0", "masked", "16", "-t")
        t.cli("nvmf_subsystem_add_ns", nqn, "lvs0/masked", "-i")

        def ns2():
            sub = [s for s in json.loads(t.cli("nvmf_get_subsystems").stdout)
                   if s["nqn"] == nqn][0]
            return [n for n in sub["namespaces"] if n["nsid"] == 2][0]

        self.assertEqual((ns2()["no_auto_visible"], ns2()["hosts"]), (True, []))
        host = "nqn.2014-08.org.nvmexpress:uuid:0a0a0a0a-0000-4000-8000-00000000000a"
        t.cli("nvmf_ns_add_host", nqn, "2", host)
        self.assertEqual(ns2()["hosts"], [host])
        saved = json.loads(t.cli("save_config").stdout)
        calls = [c for s in saved["subsystems"] if s["subsystem"] == "nvmf" for c in s["config"]]
        self.assertIn({"method": "nvmf_ns_add_host",
                       "params": {"nqn": nqn, "nsid": 2, "host": host}}, calls)
        t.cli("nvmf_ns_remove_host", nqn, "2", host)
        self.assertEqual(ns2()["hosts"], [])
        r = t.cli("nvmf_ns_add_host", nqn, "1", host, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("visible to every host", r.stdout + r.stderr)
        t.stop()
