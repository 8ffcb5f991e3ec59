"""A real two-node Ray cluster on this machine, for the tests that need one.

Each node is its own ``ray start`` (separate processes, loopback address,
small CPU count and object store), with token authentication as Ray's
``ray start`` sets it up by default, a token of the test's own. The folder of
these tests is on the nodes' PYTHONPATH, so the scripted model's answers
(``ray_fakes``) can be imported there. Each ``ray start`` runs in a session of
its own, which the node's daemons inherit, and the nodes pass a marker of the
test's own on to all they start in their environment (Ray's agents rename
themselves and lose theirs, but keep the session). Afterwards, whatever
happened, exactly the processes of those sessions or with that marker are
stopped: other Ray clusters on the machine are left alone (``ray stop`` would
stop them).
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

NODE_CPUS = 2
OBJECT_STORE = 200 * 1024 * 1024  # bytes per node: small beside 24 GB, plenty for batches


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    """A head node and worker nodes started with ``ray start``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.ray = Path(sys.executable).parent / "ray"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_port = free_port()  # Ray Client: ray://127.0.0.1:PORT
        token = folder / "auth_token"
        token.write_text(secrets.token_hex(32))
        self.calls = folder / "calls.txt"  # "PID PARENT TIME" per answer (see ray_fakes)
        paths = [str(HERE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        home = folder / "home"  # Ray writes ~/.ray (a token, sessions): not the user's own
        home.mkdir(exist_ok=True)
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "HOME": str(home),
                    "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
                    "RAY_USAGE_STATS_ENABLED": "0", "ATK_TEST_CALLS": str(self.calls)}
        self.env.pop("RAY_ADDRESS", None)
        self.marker = f"ATK_TEST_CLUSTER={secrets.token_hex(8)}".encode()
        self.env["ATK_TEST_CLUSTER"] = self.marker.split(b"=")[1].decode()
        self.worker_ports: list[int] = []
        self.sessions: set[int] = set()  # the session of each `ray start`

    def _start(self, *args):
        start = subprocess.Popen([str(self.ray), "start", "--node-ip-address=127.0.0.1",
                                  f"--num-cpus={NODE_CPUS}", f"--object-store-memory={OBJECT_STORE}",
                                  "--disable-usage-stats", *args],
                                 env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, start_new_session=True)
        self.sessions.add(start.pid)
        stdout, stderr = start.communicate(timeout=120)
        if start.returncode != 0:
            raise RuntimeError(f"ray start {' '.join(args)} failed:\n{stdout}\n{stderr}")

    def start(self):
        self._start("--head", f"--port={self.port}", "--include-dashboard=false",
                    f"--ray-client-server-port={self.client_port}")
        self.add_worker_node()
        self.wait_for_nodes(2)

    def wait_for_nodes(self, count: int, timeout: float = 120.0) -> None:
        """Wait until ``count`` nodes are alive and Ray Client answers: ``ray start``
        returns before a node has registered, and a test that connects at once races it
        (under load, "Starting Ray client server failed")."""
        probe = (
            "import sys, time, ray\n"
            "ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)\n"
            "deadline = time.monotonic() + float(sys.argv[3])\n"
            "while sum(n['Alive'] for n in ray.nodes()) < int(sys.argv[2]):\n"
            "    if time.monotonic() > deadline: sys.exit('nodes did not come up')\n"
            "    time.sleep(0.5)\n"
        )
        for address in (self.address, f"ray://127.0.0.1:{self.client_port}"):
            # Ray Client starts a server per connection; under load one can die as it starts
            # ("Initialization failure", a zombie), and the next one works: as the executor
            # does, try again a few times before calling the cluster broken.
            for attempt in range(5):
                done = subprocess.run([sys.executable, "-c", probe, address, str(count), str(timeout)],
                                      env=self.env, capture_output=True, text=True, timeout=timeout + 60,
                                      start_new_session=True)
                if done.returncode == 0:
                    break
                time.sleep(3.0 * (attempt + 1))
            else:
                raise RuntimeError(f"the test cluster at {address} is not ready:\n{done.stderr[-2000:]}")

    def add_worker_node(self) -> int:
        port = free_port()
        self._start(f"--address={self.address}", f"--node-manager-port={port}")
        self.worker_ports.append(port)
        return port

    def node(self, port: int) -> tuple[int | None, set[int]]:
        """The raylet of the worker node whose node manager listens on ``port``, and every
        process of that node: the raylet and everything it started (agents, Ray workers)."""
        parents = {}
        raylet = None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
            if command and command[0].endswith(b"/raylet") and \
                    f"--node_manager_port={port}".encode() in command:
                raylet = int(entry.name)
        if raylet is None:
            return None, set()
        family = {raylet}
        grew = True
        while grew:
            grew = False
            for pid, parent in parents.items():
                if parent in family and pid not in family:
                    family.add(pid)
                    grew = True
        return raylet, family

    def kill_worker_node(self, port: int) -> set[int]:
        """SIGKILL every process of that node, as a machine that loses power would go."""
        _, pids = self.node(port)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.worker_ports.remove(port)
        return pids

    def answers(self) -> list[tuple[int, int, float]]:
        """(pid, parent pid, time) of each answer ``ray_fakes`` gave, in order."""
        if not self.calls.exists():
            return []
        return [(int(pid), int(parent), float(at)) for pid, parent, at in
                (line.split() for line in self.calls.read_text().splitlines() if line.strip())]

    def processes(self) -> set[int]:
        """Every live process of this cluster (and of the runs the tests started on it)."""
        found = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                session = int((entry / "stat").read_text().rpartition(")")[2].split()[3])
                if session in self.sessions or \
                        self.marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
        return found

    def stop(self):
        """Stop this cluster's processes: a polite signal first, then SIGKILL for the rest."""
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            for pid in self.processes():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.2)
        return self.processes()


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("ray-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        left = cluster.stop()
        assert not left, f"processes of the test cluster still running after SIGKILL: {left}"
