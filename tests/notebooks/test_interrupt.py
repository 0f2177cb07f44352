"""Interrupting the kernel (a real SIGINT, as the ■ button sends) during ``to_dask(...).compute()`` or
``img.save(...)`` stops the download promptly: the requests in flight are abandoned, no new request reaches
the server afterwards, and no thread or I/O-loop task is still fetching.

In-process here (SIGINT to this process while the main thread waits in dask or in the writer), against a
slow loopback server; ``test_kernel_interrupt`` does the same in a real Jupyter kernel (jupyter_client).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import dezoomify_nb as dz
from dezoomify_nb.testing import TileServer, make_test_image

TRANSPORTS = ["aiohttp", "httpx"]
#: seconds the server waits before each tile: a level-0 read takes many seconds
LATENCY = 0.25
#: requests at a time: the 108 tiles of level 0 take ~7 s, far longer than the interrupt takes to come
PARALLEL = 4
#: the interrupt comes this long after the download starts
AFTER = 0.8
#: after the interrupt: time for the cancellation to land, then the window in which nothing may be asked
GRACE, QUIET = 0.15, 0.5


@pytest.fixture(scope="module")
def slow():
    with TileServer(make_test_image(3072, 2304, seed=5), latency=LATENCY) as server:
        yield server


def sigint_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def _awaited(coro: object) -> list[str]:
    """Function names down a coroutine's await chain."""
    names = []
    while coro is not None:
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is not None:
            names.append(code.co_name)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return names


def fetching() -> list[str]:
    """What is still fetching: threads inside a chunk read or a request, I/O-loop tasks inside ``fetch``."""
    busy = []
    for ident, frame in sys._current_frames().items():
        f = frame
        while f is not None:
            code = f.f_code
            if (code.co_name == "sync" and code.co_filename.endswith(os.path.join("zarr", "core", "sync.py"))) or (
                    code.co_name in ("_attempt", "_get_http") and code.co_filename.endswith("fetch.py")):
                busy.append(f"thread {ident}: {code.co_name}")
                break
            f = f.f_back

    async def tasks() -> list[str]:
        return [t.get_name() for t in asyncio.all_tasks() if "_fetch" in _awaited(t.get_coro())]

    from zarr.core.sync import _get_loop

    from dezoomify_nb.net import loop

    for io_loop in {loop.get_loop(), _get_loop()}:
        busy += asyncio.run_coroutine_threadsafe(tasks(), io_loop).result(5)
    return busy


def assert_stopped(server: TileServer, asked_before: int) -> None:
    time.sleep(GRACE)
    seen = server.count()
    time.sleep(QUIET)
    assert server.count() == seen, f"{server.count() - seen} requests {QUIET} s after the interrupt"
    assert seen > asked_before > 0
    assert fetching() == []
    deadline = time.monotonic() + 10  # the server's handlers of abandoned requests end (a loaded machine: late)
    while server.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.in_flight == 0 and server.count() == seen


def interrupted(call, server: TileServer) -> int:
    """Run ``call`` in the main thread, SIGINT it after :data:`AFTER` s; returns the requests seen by then."""
    server.reset_requests()
    timer = sigint_after(AFTER)
    try:
        with pytest.raises(KeyboardInterrupt):
            call()
            time.sleep(30)  # the interrupt must land in the call, not here
    finally:
        timer.cancel()
    return server.count()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_interrupt_stops_a_dask_compute(slow, transport):
    img = dz.open(slow.url("iiif2"), min_interval=0, parallelism=PARALLEL, transport=transport)
    arr = img.to_dask(0)
    asked = interrupted(lambda: arr.compute(scheduler="threads", num_workers=4), slow)
    assert asked < img.levels[0].n_tiles  # interrupted, not finished
    assert_stopped(slow, asked // 2)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_interrupt_stops_a_save(slow, transport, tmp_path):
    img = dz.open(slow.url("zoomify"), min_interval=0, parallelism=PARALLEL, transport=transport)
    asked = interrupted(lambda: img.save(tmp_path / "x.png", level=0, progress=False), slow)
    assert asked < img.levels[0].n_tiles
    assert_stopped(slow, asked // 2)
    assert list(tmp_path.iterdir()) == []  # nothing written, no partial file


def test_a_failed_compute_cancels_its_other_requests(slow):
    """Not only interrupts: a chunk that fails ends the compute, and the other chunks' requests stop."""
    img = dz.open(slow.url("iiif2"), min_interval=0, parallelism=PARALLEL, retries=0)
    arr = img.to_dask(0, chunks=(1024, 1024, 3))  # 16 tiles a chunk: ~1 s each
    slow.reset_requests()
    slow.fail("/iiif2/0,", times=None, status=404)  # the first column of tiles: in 3 of the 9 chunks
    try:
        with pytest.raises(dz.TileFetchError, match="404"):
            arr.compute(scheduler="threads", num_workers=4)
    finally:
        slow.clear_faults()
    asked = slow.count()
    assert asked < img.levels[0].n_tiles
    assert_stopped(slow, asked // 2)


KERNEL_CODE = """
import time
import dezoomify_nb as dz
from dezoomify_nb.testing import TileServer, make_test_image
server = TileServer(make_test_image(3072, 2304, seed=5), latency={latency}).start()
arr = dz.open(server.url("iiif2"), min_interval=0, parallelism={parallel}).to_dask(0)
"""

CHECK_CODE = """
time.sleep({grace})
seen = server.count()
time.sleep({quiet})
busy = len(fetching())
for _ in range(200):  # the server's handlers of abandoned requests end
    if not server.in_flight:
        break
    time.sleep(0.05)
print("RESULT", seen, server.count(), server.in_flight, busy)
"""


def test_kernel_interrupt(tmp_path):
    """A real kernel: execute a compute, ``interrupt_kernel()`` while it fetches, then check in the kernel."""
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                          os.environ.get("PYTHONPATH", "")]),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "IPYTHONDIR": str(tmp_path / "ipython")}
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        reply = kc.execute_interactive(textwrap.dedent(KERNEL_CODE.format(latency=LATENCY, parallel=PARALLEL)), timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        # stop_on_error=False: after an error reply (here the KeyboardInterrupt) ipykernel 7 aborts the requests
        # that reach it before its own "stop aborting" note, a race the check below lost on a loaded machine
        msg_id = kc.execute("arr.compute()", stop_on_error=False)
        time.sleep(AFTER + 1.0)  # the kernel starts the compute, requests go out
        t0 = time.monotonic()
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=30)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=30)
        took = time.monotonic() - t0
        assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        print(f"\nthe kernel answered {took:.2f} s after interrupt_kernel()")  # a measure, not a pass/fail
        out: list[str] = []
        check = "\n".join(["import asyncio, os, sys", inspect.getsource(_awaited), inspect.getsource(fetching),
                           CHECK_CODE.format(grace=GRACE, quiet=QUIET)])
        reply = kc.execute_interactive(check, timeout=30,
                                       output_hook=lambda m: out.append(m["content"].get("text", "")))
        assert reply["content"]["status"] == "ok", reply["content"]
        line = next(ln for ln in "".join(out).splitlines() if ln.startswith("RESULT"))
        _, seen, later, in_flight, busy = line.split()
        assert int(seen) > 0 and later == seen and in_flight == "0" and busy == "0", line
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
