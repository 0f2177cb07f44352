import pytest

from dezoomify_nb.testing import TileServer, make_test_image

#: 1000×700 with 256 px tiles: edge tiles of 232×188 px
WIDTH, HEIGHT = 1000, 700


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
