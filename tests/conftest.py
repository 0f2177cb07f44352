from pathlib import Path

import pytest

from dezoomify_nb.testing import TileServer, make_test_image

#: 1000×700 with 256 px tiles: edge tiles of 232×188 px
WIDTH, HEIGHT = 1000, 700

TESTS = Path(__file__).parent
#: folders whose tests start Chromium, Jupyter servers or kernels (several processes, a core or more each):
#: with ``-n`` (``make test``) one worker runs them one after the other, so two never compete on 2 cores,
#: while the other workers take the rest (``--dist loadgroup``, pyproject.toml)
HEAVY_GROUPS = {"browser": "jupyter", "notebooks": "jupyter"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's hook, which reads the mark
def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.path))
        if TESTS in path.parents:
            group = HEAVY_GROUPS.get(path.relative_to(TESTS).parts[0])
            if group:
                item.add_marker(pytest.mark.xdist_group(group))


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
