"""fit-many on Ray: one task per scene, on a local cluster that starts and stops with the
command or on a running one (``--address``), after checking that --out is shared.

Ray is optional (``pip install plenox[cluster]``); nothing here imports it until a cluster
is asked for. A local cluster runs with the dashboard and usage statistics off, every Ray
server bound to 127.0.0.1, its session files in a fresh temporary folder that is removed at
the end (not under --out: Ray's socket paths must stay short), and Ray's logs kept off the
terminal. Each scene is one task asking for ``cpus_per_scene`` CPUs (its fit uses that many
threads) and ``gpus_per_scene`` GPUs; Ray's own retries are off, plenox.runs.many retries.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import shutil
import socket
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

from plenox.errors import ClusterError
from plenox.io.atomic import atomic_write_text
from plenox.io.checked import read_text
from plenox.runs.many import FitOptions, SceneJob, fit_scene, one_line

# Set for a local cluster before Ray is imported: no usage statistics, and Ray treats the
# machine as a one-node cluster whose address is 127.0.0.1, so every Ray server binds to it.
LOCAL_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# ray.init sets this for the process when it turns token authentication on for a local cluster.
RESTORED_ENV = (*LOCAL_ENV, "RAY_AUTH_MODE")
CONNECT_SECONDS = 10.0             # how long HOST:PORT gets to answer before joining is given up
OBJECT_STORE_BYTES = 128 * 2**20   # the tasks pass a few small dicts
STOP_SECONDS = 120.0               # Ctrl-C: how long the running fits get to write their checkpoint
PROBE_SECONDS = 120.0              # how long a node gets to start a worker and write the probe file
SHARED_DOCS = "docs/fit-many.md"


def ray_installed() -> bool:
    """Whether Ray can be imported (without importing it)."""
    return importlib.util.find_spec("ray") is not None


def available_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@contextmanager
def ray_session(address: str | None, local_cpus: int | None):
    """Join the Ray cluster at ``address`` ("auto": the one this machine belongs to), or start
    a local one with ``local_cpus`` CPUs (default: this machine's cores); yields its
    description. At exit the connection closes and a local cluster stops. In a program that
    has already called ray.init (and no ``address``), that session is used and left running."""
    saved = {key: os.environ.get(key) for key in RESTORED_ENV}
    temp = None
    own = True
    try:
        if address is None:
            os.environ.update(LOCAL_ENV)
        import ray

        if address is None and ray.is_initialized():
            own = False
            yield "the running Ray session"
            return
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
        if address is None:
            temp = tempfile.mkdtemp(prefix="plenox-ray-")
            cpus = local_cpus or available_cores()
            try:
                ray.init(num_cpus=cpus, include_dashboard=False, _temp_dir=temp,
                         object_store_memory=OBJECT_STORE_BYTES, **quiet)
            except Exception as err:   # Ray raises many kinds; all mean the same here
                raise ClusterError(f"cannot start a local Ray cluster ({one_line(err)})") from None
            yield f"a local Ray cluster ({cpus} CPUs)"
        else:
            check_reachable(address)
            try:
                ray.init(address=address, **quiet)
            except Exception as err:
                raise ClusterError(f"--address {address}: cannot join a Ray cluster there ({one_line(err)}; with "
                                   f"token authentication on, set RAY_AUTH_MODE=token, see {SHARED_DOCS})") from None
            yield f"the Ray cluster at {address}"
    finally:
        if own and "ray" in sys.modules:
            _shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


def check_reachable(address: str) -> None:
    """ClusterError at once when nothing answers at a HOST:PORT address (Ray itself would retry
    for minutes); other forms ("auto", "ray://...") are left to Ray."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as err:
        raise ClusterError(f"--address {address}: nothing answers there ({err.strerror or one_line(err)}); "
                           "start the cluster with ray start --head, or give its address") from None


def _shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def node_slots(node: dict, cpus: float, gpus: float) -> int:
    """How many scenes asking for ``cpus`` CPUs and ``gpus`` GPUs fit on a node at once."""
    have = node.get("Resources", {})
    slots = math.floor(have.get("CPU", 0.0) / cpus + 1e-9)
    if gpus > 0:
        slots = min(slots, math.floor(have.get("GPU", 0.0) / gpus + 1e-9))
    return slots


class RayPool:
    """Runs each scene's ``fit_scene`` as a Ray task; see plenox.runs.many for the pool interface."""

    def __init__(self, cpus_per_scene: int | None, gpus_per_scene: float):
        """``cpus_per_scene`` None: the CPUs of the cluster's smallest node that has any, so
        one scene runs per machine. ClusterError when no node can take a scene."""
        import ray

        self.ray = ray
        nodes = self.nodes()
        cpu_counts = [n["Resources"]["CPU"] for n in nodes if n["Resources"].get("CPU", 0) > 0]
        if not cpu_counts:
            raise ClusterError("the Ray cluster has no node with CPUs")
        self.cpus = cpus_per_scene or int(min(cpu_counts))
        self.gpus = gpus_per_scene
        if self.capacity_now() == 0:
            gpu_counts = [n["Resources"].get("GPU", 0) for n in nodes]
            raise ClusterError(f"--cpus-per-scene {self.cpus} --gpus-per-scene {self.gpus:g}: no node of the Ray "
                               f"cluster has that much (the largest: {max(cpu_counts):g} CPUs, "
                               f"{max(gpu_counts):g} GPUs)")
        self.task = ray.remote(fit_scene)
        self.running = {}   # ObjectRef -> scene name

    def nodes(self) -> list[dict]:
        return [node for node in self.ray.nodes() if node.get("Alive")]

    def capacity_now(self) -> int:
        return sum(node_slots(node, self.cpus, self.gpus) for node in self.nodes())

    def capacity(self) -> int:
        """Scenes that may run at once (at least one: a cluster that lost its nodes may get them back)."""
        return max(1, self.capacity_now())

    def start(self, job: SceneJob, options: FitOptions, first_attempt: bool) -> None:
        options = FitOptions(**{**options.__dict__, "threads": self.cpus})
        ref = self.task.options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0,
                                name=f"plenox fit {job.name}").remote(job, options, first_attempt)
        self.running[ref] = job.name

    def wait(self, timeout: float) -> list[tuple[str, dict]]:
        """The scenes that ended within ``timeout`` seconds (one at most), with their outcomes."""
        ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=timeout)
        return [self.collect(ref) for ref in ready]

    def stop(self) -> list[tuple[str, dict]]:
        """Cancel the running fits (each gets a KeyboardInterrupt, checkpoints and returns) and
        collect what they return within STOP_SECONDS."""
        for ref in self.running:
            self.ray.cancel(ref)
        ready, _ = self.ray.wait(list(self.running), num_returns=len(self.running), timeout=STOP_SECONDS)
        return [self.collect(ref) for ref in ready]

    def collect(self, ref) -> tuple[str, dict]:
        name = self.running.pop(ref)
        try:
            return name, self.ray.get(ref)
        except self.ray.exceptions.RayError as err:
            return name, self.lost(err)

    def lost(self, err: Exception) -> dict:
        """The outcome of a task that did not return: its worker or node died, or it was cancelled."""
        ex = self.ray.exceptions
        if isinstance(err, getattr(ex, "TaskCancelledError", ())):
            return {"status": "interrupted", "error": None, "user_error": False}
        if isinstance(err, getattr(ex, "OutOfMemoryError", ())):
            error = "out of memory: Ray stopped the worker because its node ran low on memory"
        elif isinstance(err, getattr(ex, "NodeDiedError", ())):
            error = "the node running the scene was lost"
        elif isinstance(err, getattr(ex, "WorkerCrashedError", ())):
            error = "the worker process died (killed, out of memory or crashed)"
        else:
            error = one_line(err)
        return {"status": "failed", "error": error, "user_error": False}

    def check_shared(self, out: Path) -> None:
        """Every node that can take a scene writes a probe file into ``out`` and this machine
        reads it back (then removes it): ClusterError naming the node when it cannot write
        there, or when what it writes does not appear here (``out`` is not shared storage)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        probe = self.ray.remote(write_probe)
        checks = []
        for node in self.nodes():
            if node_slots(node, self.cpus, self.gpus) > 0:
                path = out / f".plenox-probe-{uuid.uuid4().hex}"
                where = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
                ref = probe.options(num_cpus=0, max_retries=0, scheduling_strategy=where).remote(str(path), path.name)
                checks.append((node["NodeManagerAddress"], path, ref))
        for address, path, ref in checks:
            try:
                host = self.ray.get(ref, timeout=PROBE_SECONDS)
            except Exception as err:
                cause = getattr(err, "cause", None) or err
                raise ClusterError(f"{out}: the node {address} cannot write there ({one_line(cause)}); --out must be "
                                   f"on storage every node can write (see {SHARED_DOCS})") from None
            try:
                seen = path.is_file() and read_text(path) == path.name
            finally:
                path.unlink(missing_ok=True)
            if not seen:
                raise ClusterError(f"{out}: a file the node {address} ({host}) wrote there does not appear on this "
                                   f"machine; --out must be storage that every node and this machine share "
                                   f"(see {SHARED_DOCS})")


def write_probe(path: str, text: str) -> str:
    """Write ``text`` to ``path`` (on a worker); returns the worker's host name."""
    atomic_write_text(path, text)
    return socket.gethostname()
