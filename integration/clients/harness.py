"""The harness of the real-client tests: a `lamina serve` process on a temporary data
directory and a free port, driven with SPDK's own client (PyPI package `spdk`: the `spdk.rpc`
module and the `spdk-rpc` command). `spdk_rpc_suite.py` runs the tests.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from spdk.rpc.client import JSONRPCClient, JSONRPCException

PATHS = {"lamina": None, "perf": None}
SPDK_RPC = os.path.join(os.path.dirname(sys.executable), "spdk-rpc")
HERE = os.path.dirname(os.path.abspath(__file__))
HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:1b4e28ba-2fa1-11d2-883f-0016d3ccabcd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def figure(name, value):
    print(f"FIGURE {name}={value}", flush=True)


class Lamina:
    """One `lamina serve` process on a temporary data directory."""

    def __init__(self, *extra, data=None):
        self.tmp = tempfile.mkdtemp(prefix="lamina-spdk-rpc-")
        self.data = data or os.path.join(self.tmp, "data")
        self.port = free_port()
        self.log_path = os.path.join(self.tmp, "lamina.log")
        self.log = open(self.log_path, "w")
        cmd = [PATHS["lamina"], "serve", "--data-dir", self.data, "--listen", f"127.0.0.1:{self.port}",
               "--log-level", "warn", *extra]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.sock = os.path.join(self.data, "lamina.sock")
        deadline = time.time() + 30
        while True:
            if os.path.exists(self.sock):
                try:
                    with JSONRPCClient(self.sock, timeout=5) as c:
                        c.call("framework_wait_init")
                    break
                except (OSError, JSONRPCException):
                    pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"lamina did not start: {self.tail()}")
            time.sleep(0.05)

    def tail(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()[-3000:]

    def client(self):
        return JSONRPCClient(self.sock, timeout=60)

    def call(self, method, params=None):
        with self.client() as c:
            return c.call(method, params)

    def cli(self, *args, stdin=None, check=True):
        """Runs the `spdk-rpc` command against this target, as an operator's script does."""
        r = subprocess.run([SPDK_RPC, "-s", self.sock, *map(str, args)], input=stdin,
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"spdk-rpc {' '.join(map(str, args))} failed: "
                                 f"{r.stdout}{r.stderr}\n--- lamina log ---\n{self.tail()}")
        return r

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout=60)
            assert rc == 0, f"lamina exited {rc}: {self.tail()}"
        self.log.close()

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class LaminaTest(unittest.TestCase):
    def start(self, *extra, **kw):
        t = Lamina(*extra, **kw)
        self.addCleanup(t.cleanup)
        return t

    def io(self, t, nqn, nsid, seconds=1, verify=True):
        """Writes and reads through Lamina's initiator, reading back what was written unless
        `verify` is off (a null bdev keeps nothing): the data path works."""
        r = subprocess.run([PATHS["perf"], "--addr", f"127.0.0.1:{t.port}", "--subnqn", nqn,
                            "--nsid", str(nsid), "-w", "randrw", "-q", "8", "-t", str(seconds),
                            "--warmup", "0", "--json"] + (["--verify"] if verify else []),
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, f"{r.stdout}{r.stderr}\n{t.tail()}")
