"""Worker environments for MultiWorkerMirroredStrategy tests on localhost (tests/test_apps.py,
tests/test_multiworker_recovery.py)."""

import json
import socket


def free_ports(count):
    """``count`` TCP ports free on localhost now (bound, read, released)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def worker_envs(env, count):
    """``env`` plus the ``TF_CONFIG`` of each of ``count`` workers of one cluster on localhost."""
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(count)]}
    return [{**env, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
            for i in range(count)]
