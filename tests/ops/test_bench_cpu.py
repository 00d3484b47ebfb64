"""`python -m bench.cpu` divides each process tree's CPU time by the orders placed: the tree's time
includes its children's (a granian worker, a PostgreSQL backend), and the per-thread split names
each thread by what the kernel calls it."""

import subprocess
import sys

import pytest

psutil = pytest.importorskip("psutil")
cpu = pytest.importorskip("bench.cpu")

# A parent that idles while its child burns about half a second of CPU and then waits to be counted.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import sys, time\\nend = time.process_time() + 0.5\\nwhile time.process_time() < end: pass\\n"
    "print('burnt', flush=True)\\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
child.stdout.readline()
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_tree_counts_the_cpu_of_its_children_and_threads_by_name():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(parent.stdout.readline())
        own = psutil.Process(parent.pid).cpu_times()
        assert own.user + own.system < 0.45  # the parent itself only waited...
        assert cpu.tree_cpu_seconds(parent.pid) >= 0.45  # ...its tree holds the child's half second
        by_thread = cpu.thread_cpu_seconds(parent.pid)
        assert max(by_thread.values()) >= 0.45, by_thread  # the child's main thread, under its name
        assert cpu.tree_cpu_seconds(2**22 + 1) == 0.0  # a process that is gone counts nothing
    finally:
        if child is not None:
            subprocess.run(["kill", str(child)], check=False)
        parent.kill()
