import pytest

from dezoomify_nb.testing import TileServer, make_test_image

#: 1000×700 with 256 px tiles: edge tiles of 232×188 px
WIDTH, HEIGHT = 1000, 700

#: folders whose tests are each one work unit of ``-n`` (``make test``): tests/browser's start Chromium with
#: Jupyter servers and kernels (several processes, a core or more in all), so one worker runs them one after
#: the other and two never compete on 2 cores; tests/notebooks' run a kernel each (nbclient), one at a time in
#: one worker beside them. The other workers take the rest test by test.
HEAVY_GROUPS = {"browser": "browser", "notebooks": "kernels"}


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook (in the test extra; plain `pytest` runs without it)
def pytest_xdist_make_scheduler(config, log):
    """With ``-n`` (``--dist load``, its default, or ``loadgroup``): HEAVY_GROUPS' tests are one work unit each.

    The scheduler itself, not ``xdist_group`` marks: pytest 9.2's structured node ids ignore the id suffix
    pytest-xdist 3.8 writes for a mark, so marked tests were spread over every worker (pytest-xdist #1386).
    Nothing in addopts: a plain ``pytest`` works without pytest-xdist installed."""
    if config.getvalue("dist") not in ("load", "loadgroup"):
        return None
    from xdist.scheduler import LoadGroupScheduling

    class FolderGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            parts = nodeid.split("/", 2)
            if len(parts) == 3 and parts[0] == "tests" and parts[1] in HEAVY_GROUPS:
                return HEAVY_GROUPS[parts[1]]
            return super()._split_scope(nodeid)

    return FolderGroups(config, log)


@pytest.fixture(scope="session")
def source():
    return make_test_image(WIDTH, HEIGHT, seed=3)


@pytest.fixture(scope="session")
def _server(source):
    with TileServer(source) as server:
        yield server


@pytest.fixture
def server(_server):
    """The shared loopback tile server, with its request log and faults reset for each test."""
    _server.reset_requests()
    _server.clear_faults()
    yield _server
    _server.clear_faults()


@pytest.fixture
def waits(monkeypatch):
    """Record the network layer's retry waits instead of sleeping them."""
    import asyncio

    fetch_module = __import__("dezoomify_nb.net.fetch", fromlist=["fetch"])
    recorded = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds, *args, **kwargs):
        recorded.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(fetch_module.asyncio, "sleep", fake_sleep)
    return recorded
