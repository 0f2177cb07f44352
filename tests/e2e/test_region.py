"""Saving a region: only its tiles are fetched, pixels equal the source window, at any level."""

import numpy as np
import pytest

import dezoomify_nb as dz
from dezoomify_nb.cli import main

from .helpers import is_tile, read

FAST = {"min_interval": 0, "retry_delay": 0.01}


def test_region_of_full_resolution(server, tmp_path):
    img = dz.open(server.url("dzi-png"), **FAST)
    server.reset_requests()
    result = img.save(tmp_path / "r.png", region=(300, 200, 250, 100), progress=False)
    assert (result.width, result.height) == (250, 100)
    np.testing.assert_array_equal(read(result.path), server.level_image("dzi-png", 0)[200:300, 300:550])
    tiles = sorted(p.rsplit("/", 1)[-1] for p in server.requests if is_tile(p))
    assert tiles == ["1_0.png", "1_1.png", "2_0.png", "2_1.png"]  # 254-px tiles under x 300-550, y 200-300


def test_region_at_a_lower_level_is_scaled(server, tmp_path):
    img = dz.open(server.url("iiif2"), **FAST)
    result = img.save(tmp_path / "r.png", level=1, region=(100, 50, 400, 300), progress=False)
    assert (result.width, result.height) == (200, 150)
    np.testing.assert_array_equal(read(result.path), server.level_image("iiif2", 1)[25:175, 50:250])


def test_region_cli_and_errors(server, tmp_path, capsys):
    assert main(["-l", "-i", "0", "--region", "0,0,10,700", server.url("iiif3"), str(tmp_path / "c.png")]) == 0
    np.testing.assert_array_equal(read(tmp_path / "c.png"), server.level_image("iiif3", 0)[:, :10])
    assert main(["-l", "--region", "900,0,200,10", server.url("iiif3"), str(tmp_path / "d.png")]) == 1
    assert "not inside" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--region", "1,2,3", server.url("iiif3")])
