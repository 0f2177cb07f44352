"""The done card's "Save to this computer": the kernel's side of the transfer (the page's side, in Voila and
JupyterLab, is in tests/browser/test_voila_picker.py and test_picker_looks.py).

The page's messages are played here as the browser sends them (``file-begin``, then ``file-chunk`` by
index); the kernel's replies are collected and their buffers put together must be the file's bytes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import dezoomify_nb as dz
from dezoomify_nb.widgets import status as status_mod
from dezoomify_nb.widgets.cards import link_href
from dezoomify_nb.widgets.status import StatusCard

FAST = {"min_interval": 0, "retry_delay": 0.01}


class Page:
    """Plays the page's side of :class:`StatusCard`'s protocol (as static/status.js does)."""

    def __init__(self, card: StatusCard, monkeypatch: pytest.MonkeyPatch) -> None:
        self.card = card
        self.replies: list[tuple[dict[str, Any], list[bytes] | None]] = []
        monkeypatch.setattr(card, "send", lambda content, buffers=None: self.replies.append((content, buffers)))

    def ask(self, kind: str, token: str | None = None, index: int = 0) -> tuple[dict[str, Any], bytes | None]:
        self.replies.clear()
        token = self.card.offered if token is None else token
        self.card._on_msg(self.card, {"type": kind, "token": token, "index": index}, [])
        (content, buffers), = self.replies
        assert content["type"] == kind and content["token"] == token
        return content, (bytes(buffers[0]) if buffers else None)

    def fetch(self) -> bytes:
        head, _ = self.ask("file-begin")
        assert "error" not in head, head
        parts = [self.ask("file-chunk", index=i) for i in range(head["chunks"])]
        assert all("error" not in c and data is not None and c["bytes"] == len(data) for c, data in parts), parts
        data = b"".join(d for _, d in parts if d is not None)
        assert len(data) == head["size"]
        return data


def test_a_download_is_offered_and_sent_in_chunks_equal_to_the_file(gallery, tmp_path, monkeypatch):
    monkeypatch.setattr(status_mod, "CHUNK_BYTES", 4096)  # several chunks for a small file
    p = dz.widget(gallery.manifest_url, directory=tmp_path, **FAST).wait(60)
    page = Page(p.status, monkeypatch)
    assert p.status.offered == ""  # nothing before a download
    p.level_select.value = 1
    p.file_box.value = "page1.png"
    p.download().wait(60)
    assert p.state == "done" and p.result is not None
    path = p.result.path
    card = p.status.value
    assert 'data-dz-save' in card and "Save to this computer" in card and "dz-save-note" not in card
    assert f'href="{link_href(path)}"' in card  # the link that opens the file in JupyterLab is kept
    assert p.status.offered and p.status.offered_name == "page1.png"
    head, _ = page.ask("file-begin")
    assert head["name"] == "page1.png" and head["mime"] == "image/png" and head["size"] == path.stat().st_size
    assert head["chunks"] == -(-path.stat().st_size // 4096) > 1
    assert page.fetch() == path.read_bytes()
    assert p.status.sent == [(path, path.stat().st_size)]

    # a part beyond the file, or a token the kernel never gave: nothing is read
    content, data = page.ask("file-chunk", index=head["chunks"])
    assert "error" in content and data is None
    content, data = page.ask("file-begin", token="0" * 32)
    assert content["error"].startswith("This file is no longer offered") and data is None

    # the file changed on the server after the download: not sent (it is not the file the card describes)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    content, data = page.ask("file-chunk", index=0)
    assert "changed on the server" in content["error"] and data is None

    # another image: the card goes, and so does the offer
    old = p.status.offered
    p.image_select.value = 1
    p.wait(60)
    assert p.status.offered == "" and "data-dz-save" not in p.status.value
    content, data = page.ask("file-begin", token=old)
    assert "error" in content and data is None


def test_above_the_cap_the_card_says_where_the_file_is(gallery, tmp_path, monkeypatch):
    p = dz.widget(gallery.manifest_url, directory=tmp_path, **FAST).wait(60)
    page = Page(p.status, monkeypatch)
    p.status.max_bytes = 1000  # the level-2 PNG is larger
    p.level_select.value = 2
    p.file_box.value = "big.png"
    p.download().wait(60)
    assert p.state == "done" and p.result is not None
    size = p.result.path.stat().st_size
    assert size > 1000
    card = p.status.value
    assert "data-dz-save" not in card and p.status.offered == ""
    note = card.split('class="dz-save-note">', 1)[1].split("</div>", 1)[0]
    assert "too large to send through this page (the limit is 1.0 kB)" in note and "at the path below" in note
    assert str(p.result.path) in card  # the path below
    content, data = page.ask("file-begin", token="")
    assert "error" in content and data is None and p.status.sent == []

    # at the cap exactly it is sent
    p.status.max_bytes = size
    p.file_box.value = "at-cap.png"
    p.download().wait(60)
    assert p.status.offered and page.fetch() == p.result.path.read_bytes()


def test_folders_and_missing_files_are_not_offered(tmp_path: Path, monkeypatch):
    card = StatusCard()
    folder = tmp_path / "tiles.zarr"
    (folder / "0").mkdir(parents=True)
    (folder / "0" / "0.0").write_bytes(b"x" * 10)
    assert card.offer(folder).kind == "folder" and card.offered == ""
    assert card.offer(tmp_path / "gone.png").kind == "missing" and card.offered == ""
    f = tmp_path / "a.tif"
    f.write_bytes(b"II*\x00" + bytes(range(256)) * 3)
    offer = card.offer(f)
    assert offer is not None and offer.kind == "file" and card.offered == offer.token
    page = Page(card, monkeypatch)
    assert page.fetch() == f.read_bytes()
    assert page.ask("file-begin")[0]["mime"] == "image/tiff"
    card.offer(None)
    assert card.offered == "" and "error" in page.ask("file-begin", token=offer.token)[0]
