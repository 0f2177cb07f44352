"""Output naming (dezoomify-rs output_file.rs vectors and §12.2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dezoomify_nb.errors import WriterError
from dezoomify_nb.writers.atomic import Output, atomic_output
from dezoomify_nb.writers.naming import choose, default_extension, output_path, sanitize_title

SPECIAL_TITLES = [
    "? [Question Mark] Australian WWI Poster",
    "The Rocky Mountains, Lander's Peak",
    '"Is It So Nominated in the Bond?" (Scene from "The Merchant of Venice")',
    "",
]


@pytest.mark.parametrize("title", SPECIAL_TITLES)
def test_special_chars_give_creatable_names(tmp_path, title):
    # output_file.rs test_special_chars: the name must not exist yet and must be creatable
    out = output_path(None, title=title, directory=tmp_path)
    assert out.parent == tmp_path
    assert not out.exists()
    chosen = choose(out, explicit=False)
    assert chosen == out and not chosen.exists()
    chosen.write_bytes(b"x")
    assert chosen.read_bytes() == b"x"


@pytest.mark.parametrize(
    "title,expected",
    [
        ("? [Question Mark] Australian WWI Poster", "[Question Mark] Australian WWI Poster"),
        ("The Rocky Mountains, Lander's Peak", "The Rocky Mountains, Lander's Peak"),
        ('"Is It So Nominated in the Bond?" (Scene from "The Merchant of Venice")',
         "Is It So Nominated in the Bond_ (Scene from _The Merchant of Venice_)"),
        ("Read: http://blog.getreu.net/projects/tp-note/", "Read_ http_blog.getreu.net_projects_tp-note"),
        ("a/b\\c:d*e?f\"g<h>i|j", "a_b_c_d_e_f_g_h_i_j"),
        ("  lots   of\tspace  ", "lots of space"),
        ("line one\r\nline two\n\nthree", "line one-line two-three"),
        ("bell\x07 and\x00 nul", "bell and nul"),
        ("zero\u200bwidth", "zerowidth"),
        ("Mona Lisa – Léonard de Vinci", "Mona Lisa – Léonard de Vinci"),
        ("東京の地図", "東京の地図"),
        ("", ""),
        (None, ""),
        (".", ""),
        ("..", ""),
        ("...", ""),
        ("/", ""),
        ("???", ""),
        (".hidden", "hidden"),
        ("trailing dot.", "trailing dot"),
        ("CON", "_CON"),
        ("lpt1.txt", "_lpt1.txt"),
    ],
)
def test_sanitize_title(title, expected):
    assert sanitize_title(title) == expected


def test_sanitize_title_length_limit():
    name = sanitize_title("é" * 300)
    assert len(name.encode()) <= 200
    assert name == "é" * 100
    assert len(sanitize_title("x" * 1000)) == 200


@pytest.mark.parametrize(
    "size,ext",
    [((None, None), "png"), ((1000, 1000), "jpg"), ((65_500, 10), "jpg"), ((10, 65_500), "jpg"),
     ((65_501, 10), "png"), ((10, 65_535), "png"), ((100_000, 100_000), "png"), ((0, 0), "png")],
)
def test_default_extension(size, ext):
    assert default_extension(*size) == ext


def test_switch_to_png_for_large_files(tmp_path):
    # output_file.rs switch_to_png_for_large_files
    cases = [
        (None, "hello", None, tmp_path / "hello.png"),
        (None, "hello", (1000, 1000), tmp_path / "hello.jpg"),
        (None, "", None, tmp_path / "dezoomified.png"),
        (None, None, None, tmp_path / "dezoomified.png"),
        (None, None, (1000, 1000), tmp_path / "dezoomified.jpg"),
        ("test.tiff", "hello", (1000, 1000), Path("test.tiff")),
    ]
    for outfile, title, size, expected in cases:
        w, h = size or (None, None)
        assert output_path(outfile, title=title, width=w, height=h, directory=tmp_path) == expected


def test_explicit_outfile_rules(tmp_path):
    assert output_path("out", title="t", width=10, height=10) == Path("out.jpg")
    assert output_path("out", title="t") == Path("out.png")
    assert output_path(tmp_path / "dir" / "out", width=70_000, height=10) == tmp_path / "dir" / "out.png"
    assert output_path("out.", width=10, height=10) == Path("out.jpg")
    assert output_path("x.JPG", width=70_000, height=10) == Path("x.JPG")  # as given; check() complains
    assert output_path("", title="t") == Path("t.png")  # empty outfile: as if none
    assert output_path("a.b/out", width=1, height=1) == Path("a.b/out.jpg")


def test_default_directory_is_cwd():
    assert output_path(None, title="x") == Path("x.png")


def test_existing_file_gets_suffix(tmp_path):
    # output_file.rs test_existing_file, plus the _0001 numbering of §12.2
    base = output_path(None, title="xxx", directory=tmp_path)
    (tmp_path / "xxx").touch()
    got = []
    for _ in range(3):
        got.append(choose(base, explicit=False))
        got[-1].touch()
    assert got == [tmp_path / "xxx.png", tmp_path / "xxx_0001.png", tmp_path / "xxx_0002.png"]


def test_collision_with_a_directory(tmp_path):
    (tmp_path / "img.png").mkdir()
    assert choose(tmp_path / "img.png", explicit=False) == tmp_path / "img_0001.png"


def test_explicit_existing_file_is_never_overwritten(tmp_path):
    path = tmp_path / "mine.jpg"
    path.write_bytes(b"precious")
    with pytest.raises(WriterError) as e:
        choose(path, explicit=True)
    assert "already exists" in str(e.value)
    assert "another" in e.value.hint and "delete" in e.value.hint
    assert path.read_bytes() == b"precious"
    assert choose(path, explicit=True, overwrite=True) == path


def test_explicit_symlink_is_never_followed_nor_replaced(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"")  # empty: an empty *file* would be replaced, a link to one must not be
    (tmp_path / "link.png").symlink_to(victim)
    with pytest.raises(WriterError):
        choose(tmp_path / "link.png", explicit=True)


def test_explicit_empty_file_is_replaced(tmp_path):
    path = tmp_path / "again.png"
    path.touch()
    assert choose(path, explicit=True) == path
    out = Output(path).prepare()
    with out.active(), atomic_output(path) as f:
        f.write(b"image")
    assert out.publish() == path and path.read_bytes() == b"image"
    assert os.listdir(tmp_path) == ["again.png"]


def test_explicit_new_file_is_not_created_before_the_download(tmp_path):
    path = tmp_path / "new.tif"
    assert choose(path, explicit=True) == path and not path.exists()


def test_missing_directory_fails_when_the_temporary_is_made(tmp_path):
    with pytest.raises(WriterError) as e:
        Output(tmp_path / "nope" / "x.png").prepare()
    assert "Cannot create the output file" in str(e.value) and e.value.hint


def test_discard_removes_the_temporary(tmp_path):
    out = Output(tmp_path / "r.png").prepare()
    assert out.tmp is not None and out.tmp.name.startswith(".r.png.") and out.tmp.name.endswith(".partial")
    assert (out.tmp.stat().st_mode & 0o777) == 0o600  # nobody else reads a half-written image
    out.discard()
    out.discard()
    assert os.listdir(tmp_path) == []


def test_default_names_are_exclusive_under_races(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    base = tmp_path / "race.jpg"

    def one(i: int) -> Path:
        out = Output(choose(base, explicit=False), explicit=False).prepare()
        with out.active(), atomic_output(out.final) as f:
            f.write(str(i).encode())
        return out.publish()

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, range(40)))
    assert len(set(got)) == 40
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in got)  # no temporary left
    assert sorted(int(p.read_bytes()) for p in got) == list(range(40))  # each run's own content


def test_explicit_name_taken_meanwhile_is_kept(tmp_path):
    path = tmp_path / "both.png"
    first, second = Output(path).prepare(), Output(path).prepare()
    for out, data in ((first, b"first"), (second, b"second")):
        with out.active(), atomic_output(path) as f:
            f.write(data)
    assert first.publish() == path
    with pytest.raises(WriterError) as e:
        second.publish()
    assert "not overwritten" in str(e.value) and "--overwrite" in e.value.hint
    assert path.read_bytes() == b"first" and os.listdir(tmp_path) == ["both.png"]
    third = Output(path, overwrite=True).prepare()
    with third.active(), atomic_output(path) as f:
        f.write(b"third")
    assert third.publish() == path and path.read_bytes() == b"third"
    assert (path.stat().st_mode & 0o777) == 0o666 & ~_umask()
    assert os.listdir(tmp_path) == ["both.png"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("how", ["renameat2", "link", "claim"])
def test_rename_noreplace_never_replaces(tmp_path, monkeypatch, how):
    """Each way of renaming without replacing (renameat2; a hard link; a claim by O_EXCL / mkdir)."""
    from dezoomify_nb.writers import atomic

    if how == "renameat2" and atomic._renameat2 is None:
        pytest.skip("no renameat2 here")
    if how != "renameat2":
        monkeypatch.setattr(atomic, "_renameat2", None)
    if how == "claim":
        def no_links(*args, **kwargs):
            raise PermissionError(1, "Operation not permitted")

        monkeypatch.setattr(atomic.os, "link", no_links)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(b"new")
    dst.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        atomic.rename_noreplace(src, dst)
    assert dst.read_bytes() == b"old" and src.read_bytes() == b"new"
    dst.unlink()
    atomic.rename_noreplace(src, dst)
    assert dst.read_bytes() == b"new" and not src.exists()
    folder, target = tmp_path / "folder", tmp_path / "target"
    folder.mkdir()
    (folder / "f").write_bytes(b"x")
    target.mkdir()  # even an empty folder is not replaced (publish() removes an empty one itself)
    with pytest.raises(FileExistsError):
        atomic.rename_noreplace(folder, target)
    target.rmdir()
    atomic.rename_noreplace(folder, target)
    assert (target / "f").read_bytes() == b"x" and not folder.exists()
