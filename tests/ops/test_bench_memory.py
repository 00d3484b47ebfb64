"""The benchmark's memory soak judges each process, not the sum of a tree whose processes come and go."""

import subprocess
import sys
import time

import pytest

from bench.processes import MemorySampler, _steady_growth, process_memory

psutil = pytest.importorskip("psutil")

PARENT = """
import subprocess, sys, time
grows = subprocess.Popen([sys.executable, "-c",
    "import time\\nheld = []\\nwhile True:\\n    held.append(bytearray(4 * 2**20)); time.sleep(0.1)"])
idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(grows.pid, idle.pid, flush=True)
# A short-lived process joins the tree (as a new PostgreSQL backend would) and leaves again.
time.sleep(1.0)
subprocess.run([sys.executable, "-c", "import time; x = bytearray(64 * 2**20); time.sleep(1.0)"])
time.sleep(60)
"""


def sampled(name: str, pid: int, seconds: float = 3.5, *, detail_every: int = 1) -> tuple[MemorySampler, float, float]:
    """A sampler that watched the tree of `pid` every 0.1 s for `seconds`, and that window."""
    sampler = MemorySampler(interval=0.1, detail_every=detail_every)
    sampler.watch(name, pid)
    start = time.time()
    while time.time() - start < seconds:
        sampler.sample_once()
        time.sleep(0.1)
    return sampler, start, time.time()


def test_the_soak_names_the_process_that_grows_and_ignores_one_that_came_and_went():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        grows, idle = (int(pid) for pid in parent.stdout.readline().split())
        sampler, start, end = sampled("tree", parent.pid)

        slope, pid, steady = sampler.process_growth_mb_per_minute("tree", start, end)
        assert pid == grows
        assert slope > 1000  # about 40 MB a second
        assert steady
        transient = {pid for _name, pid in sampler.process_series} - {parent.pid, grows, idle}
        assert transient, "the short-lived process was sampled while it lived"

        # Without the grower, the tree's sum still jumped by 64 MB and back; no process grew.
        del sampler.process_series[("tree", grows)]
        slope, pid, _steady = sampler.process_growth_mb_per_minute("tree", start, end)
        assert pid in (parent.pid, idle)
        assert abs(slope) < 60
    finally:
        parent.kill()
        for pid in (grows, idle):
            subprocess.run(["kill", str(pid)], check=False)


SHARED_POOL = """
import mmap, os, sys, time
pool = mmap.mmap(-1, 64 * 2**20)  # shared and anonymous, as PostgreSQL's shared_buffers
pool.write(b"x" * len(pool))  # the parent touches every page first
child = os.fork()
if child == 0:
    # A backend touching more and more of the pool: each page is now mapped by two processes.
    for start in range(0, len(pool), 2**20):
        pool[start : start + 2**20] = b"y" * 2**20
        time.sleep(0.05)
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
time.sleep(60)
"""


def test_a_process_touching_more_of_a_shared_pool_is_not_counted_as_growing():
    parent = subprocess.Popen([sys.executable, "-c", SHARED_POOL], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        sampler, start, end = sampled("pool", parent.pid)
        series = [(t, v) for t, v in sampler.process_series[("pool", child)] if start <= t <= end]
        assert series, "the child was sampled"
        # Its PSS did rise (half of every page it touched)...
        assert psutil.Process(child).memory_full_info().pss > 20 * 2**20
        # ...but it allocated nothing of its own, so the soak does not call it growing.
        slope, _pid, steady = sampler.process_growth_mb_per_minute("pool", start, end)
        assert slope < 60
        assert not steady
    finally:
        parent.kill()


FIRST_TOUCH = """
import mmap, time
pool = mmap.mmap(-1, 64 * 2**20)  # shared and anonymous, as PostgreSQL's shared_buffers
print(flush=True)
# The first backend to use more and more of the pool: no other process maps these pages yet.
for start in range(0, len(pool), 2**20):
    pool[start : start + 2**20] = b"y" * 2**20
    time.sleep(0.05)
time.sleep(60)
"""


def test_the_first_process_to_touch_pages_of_a_shared_pool_is_not_counted_as_growing():
    process = subprocess.Popen([sys.executable, "-c", FIRST_TOUCH], stdout=subprocess.PIPE, text=True)
    try:
        process.stdout.readline()
        sampler, start, end = sampled("pool", process.pid)
        # Its USS rose by every page it touched (only it maps them), and steadily...
        uss_slope, _pid, uss_steady = sampler.process_growth_mb_per_minute("pool", start, end, uss=True)
        assert uss_slope > 300
        assert uss_steady
        assert process_memory(psutil.Process(process.pid)).uss > 40
        # ...but the pool is a shared mapping of fixed size, not memory the process allocated.
        slope, _pid, steady = sampler.process_growth_mb_per_minute("pool", start, end)
        assert slope < 60
        assert not steady
    finally:
        process.kill()


def test_one_allocation_is_told_from_growth_that_goes_on():
    seconds = range(0, 240)
    leak = [(t, 100 + 0.05 * t) for t in seconds]  # 3 MB a minute, all along
    step = [(t, 178 if t < 110 else 198) for t in seconds]  # 20 MB once (a client made by a first task)
    flat = [(t, 120 + (t % 3) * 0.01) for t in seconds]
    assert _steady_growth(leak)
    assert not _steady_growth(step)
    assert not _steady_growth(flat)


def test_peaks_are_sampled_every_time_and_the_detail_every_few_samples():
    """The bench samples RSS every second and the costly rollup every fifth: the peak of a process
    that grew is still seen, and the growth series has one point per fifth sample."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        grows, idle = (int(pid) for pid in parent.stdout.readline().split())
        sampler, start, end = sampled("tree", parent.pid, seconds=4.0, detail_every=5)
        samples = sampler._samples
        points = sampler.process_series[("tree", idle)]
        assert samples >= 25 and len(points) == -(-samples // 5)
        largest = psutil.Process(grows).memory_info().rss / 2**20
        assert largest > 40 and sampler.peak_single["tree"] > 0.8 * largest  # the grower's latest size
        slope, pid, steady = sampler.process_growth_mb_per_minute("tree", start, end)
        assert pid == grows and slope > 1000 and steady
    finally:
        parent.kill()
        for pid in (grows, idle):
            subprocess.run(["kill", str(pid)], check=False)
