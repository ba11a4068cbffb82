"""Running N real processes in a pytest test (the Python side of tests/processes.h): start them all at once, wait
for all, and require each to exit 0 having printed its pass line; one stuck past the timeout kills them all."""

import socket
import subprocess


def free_port():
    """A TCP port on loopback that nothing listens on now (for a job's coordinator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(count, command_for, passed_for, timeout, env=None):
    """Runs command_for(i) for i in range(count) as processes of one job; asserts that process i exits 0 with
    passed_for(i) in its output (stdout and stderr). Returns the outputs, in process order."""
    procs = [subprocess.Popen(command_for(i), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for i in range(count)]
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for i, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0 and passed_for(i) in out, f"process {i}:\n{out[-3000:]}"
    return outputs
