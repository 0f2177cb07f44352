"""A new picker readies, in the background, what the first open would wait for (the dezoomers' and the HTTP
client's imports, the I/O loop: ~0.4 s between Enter and the first tile in a fresh kernel), while the user
types a URL. In a fresh interpreter: the other tests have imported everything already."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHECK = textwrap.dedent("""
    import sys, threading, time
    import dezoomify_nb as dz
    from dezoomify_nb import registry

    before = "aiohttp" in sys.modules, registry.list_dezoomers.cache_info().currsize
    picker = dz.widget()
    deadline = time.monotonic() + 60
    while any(t.name == "dezoomify_nb-warm-up" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the warm-up did not end"
        time.sleep(0.01)
    from dezoomify_nb.net import loop
    after = "aiohttp" in sys.modules, registry.list_dezoomers.cache_info().currsize, loop._loop is not None
    print(before, after)
    """)


def test_a_new_picker_warms_up_the_first_open():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[0] == "(False, 0) (True, 1, True)", out.stdout
