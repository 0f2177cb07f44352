"""Issue 14, class 1: a remote document never makes us read a local file; a local input reads only its folder.

Hostile documents of every kind (IIIF info.json ``@id``, a manifest's image and image service, a
collection's manifests, a Deep Zoom ``Url``, a krpano ``<include>``, a tiles.yaml template, a bulk list, a
web page's preview) are served from the loopback server, each naming a local file: ``file://`` URLs, bare
paths and ``../`` paths to a watched secret, ``/dev/zero``, a named pipe, ``/dev/stdin``, a byte range of
the secret, and other schemes (``ftp:``, ``data:``). Everything runs in watched subprocesses
(:func:`~tests.hostile.harness.run_isolated`): a driver script opens and downloads every document on both
transports, and the CLI is run on a few. No tripwire may fire, nothing may hang or grow, each refusal has
a hint, and a document's valid images stay usable.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from .harness import Run, Tripwires, run_isolated

TRANSPORTS = ["aiohttp", "httpx"]
RSS_MB = 450  # well under what reading /dev/zero (256 MiB, then joined) would take
W, H = 300, 200
DZI = ('<?xml version="1.0" encoding="UTF-8"?><Image xmlns="http://schemas.microsoft.com/deepzoom/2008" '
       'Format="png" Overlap="0" TileSize="256"{url}><Size Width="300" Height="200"/></Image>')

DRIVER = r'''
import json, sys
import dezoomify_nb as dz
from dezoomify_nb.collection import ImageCollection
from dezoomify_nb.errors import DezoomifyError

cfg = json.loads(sys.argv[1])
results, n = {}, 0
for transport in cfg["transports"]:
    for url in cfg["urls"]:
        key = transport + " " + url
        try:
            found = dz.open(url, transport=transport, min_interval=0, retries=0, retry_delay=0.01, timeout=5,
                            connect_timeout=3)
            items = list(found) if isinstance(found, ImageCollection) else [found]
        except DezoomifyError as exc:
            results[key] = [f"{type(exc).__name__}: {exc} || {exc.hint}"]
            continue
        out = []
        for item in items:
            n += 1
            try:
                item.save(f"{cfg['out']}/{n}.png", progress=False)
                out.append("ok")
            except DezoomifyError as exc:
                out.append(f"{type(exc).__name__}: {exc} || {exc.hint}")
        results[key] = out
print(json.dumps(results))
'''


def _png(w: int = W, h: int = H) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (20, 120, 220)).save(out, "PNG")
    return out.getvalue()


def _tiles_yaml(template: str) -> str:
    return (f"url_template: {json.dumps(template)}\nvariables:\n  - {{ name: x, from: 0, to: 0 }}\n"
            f"width: {W}\nheight: {H}\n")


def _manifest(*bodies: dict) -> str:
    canvases = [{"id": f"c{i}", "type": "Canvas", "width": W, "height": H, "label": {"none": [f"canvas {i}"]},
                 "items": [{"type": "AnnotationPage", "items": [
                     {"type": "Annotation", "motivation": "painting", "body": body}]}]}
                for i, body in enumerate(bodies)]
    return json.dumps({"@context": "http://iiif.io/api/presentation/3/context.json", "id": "m", "type": "Manifest",
                       "label": {"none": ["hostile"]}, "items": canvases})


def _run_driver(urls: list[str], out: Path, cwd: Path | None = None) -> tuple[Run, dict[str, list[str]]]:
    out.mkdir(parents=True, exist_ok=True)
    cfg = json.dumps({"urls": urls, "transports": TRANSPORTS, "out": str(out)})
    run = run_isolated(code=f"import sys; sys.argv[1:] = [{cfg!r}]\n" + DRIVER, rss_mb=RSS_MB, seconds=120,
                       cwd=cwd)
    run.assert_contained(RSS_MB)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-3000:]
    return run, json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture
def wires(tmp_path):
    with Tripwires(tmp_path / "trip") as tripwires:
        yield tripwires


def _targets(wires: Tripwires) -> dict[str, str]:
    """What hostile documents point to: every way of naming a local file, and non-http schemes."""
    secret, fifo = str(wires.secret), str(wires.fifo)
    return {
        "file-secret": wires.file_url, "file-range": wires.file_url + "#bytes=0-3",
        "file-zero": "file:///dev/zero", "file-fifo": Path(fifo).as_uri(), "file-stdin": "file:///dev/stdin",
        "file-host": "file://localhost" + secret,
        "bare-secret": secret, "bare-zero": "/dev/zero", "bare-fifo": fifo, "bare-stdin": "/dev/stdin",
        "relative": "../" * 12 + secret.lstrip("/"),
        "ftp": "ftp://127.0.0.1/x.png", "data": "data:image/png;base64,iVBORw0KGgo=",
    }


def _hostile_site(serve, wires: Tripwires) -> tuple[str, dict[str, list[str]], list[str]]:
    """Serve one document of each kind per target; returns (base URL, {target name: URLs}, [multi URLs])."""
    targets = _targets(wires)
    files: dict[str, bytes | str] = {"valid.png": _png(), "v.dzi": DZI.format(url=""),
                                     "v_files/9/0_0.png": _png(256, H), "v_files/9/1_0.png": _png(44, H)}
    for name, t in targets.items():
        files[f"{name}/info.json"] = json.dumps({
            "@context": "http://iiif.io/api/image/2/context.json", "@id": t, "protocol": "http://iiif.io/api/image",
            "width": W, "height": H, "tiles": [{"width": 256, "scaleFactors": [1]}]})
        files[f"{name}/d.dzi"] = DZI.format(url=f' Url="{t}"')
        files[f"{name}/tour.xml"] = (f'<krpano><include url="{t}"/><image multires="true" tilesize="256">'
                                     f'<level tiledimagewidth="{W}" tiledimageheight="{H}"><flat url="{t}"/></level>'
                                     '</image></krpano>')
        files[f"{name}/tiles.yaml"] = _tiles_yaml(t)
        files[f"{name}/collection.json"] = json.dumps({
            "@context": "http://iiif.io/api/presentation/2/context.json", "@id": "c", "@type": "sc:Collection",
            "manifests": [{"@id": t, "@type": "sc:Manifest"}]})
        files[f"{name}/page.html"] = (f'<html><head><meta property="og:image" content="{t}"></head>'
                                      '<body>nothing zoomable</body></html>')
    files["manifest.json"] = _manifest(
        {"id": "valid.png", "type": "Image", "width": W, "height": H},
        *({"id": t, "type": "Image", "width": W, "height": H} for t in targets.values()),
        *({"id": "x.png", "type": "Image", "service": [{"id": t, "type": "ImageService3"}]} for t in targets.values()))
    # tiles.yaml whose first tile is on the server and second is the secret: refused when fetched
    files["mixed/tiles.yaml"] = (f"url_template: '{{{{if(x == 0, \"../v_files/9/0_0.png\", \"{wires.file_url}\")}}}}'\n"
                                 "x_template: \"x * 256\"\nvariables:\n  - { name: x, from: 0, to: 1 }\n"
                                 f"width: 512\nheight: {H}\n")
    # (an ftp:// line makes the whole list invalid: dezoomify-rs's rule, tested elsewhere)
    files["bulk-list.txt"] = "v.dzi valid\n" + "".join(f"{t} {n}\n" for n, t in targets.items() if n != "ftp")
    base = serve(files)
    per_target = {name: [f"{base}/{name}/{doc}" for doc in ("info.json", "d.dzi", "tour.xml", "tiles.yaml",
                                                            "collection.json", "page.html")]
                  for name in targets}
    return base, per_target, [f"{base}/manifest.json", f"{base}/bulk-list.txt", f"{base}/mixed/tiles.yaml"]


def _refused_with_hint(outcome: str) -> bool:
    message, _, hint = outcome.partition(" || ")
    return outcome != "ok" and bool(hint.strip()) and "internal error" not in message


def test_remote_documents_never_read_local_files(serve, wires, tmp_path):
    base, per_target, multi = _hostile_site(serve, wires)
    urls = [u for group in per_target.values() for u in group] + multi
    run, results = _run_driver(urls, tmp_path / "out")
    assert wires.tripped() == [], run.stderr[-3000:]
    assert wires.token not in run.stdout + run.stderr
    for transport in TRANSPORTS:
        for name, group in per_target.items():
            for url in group:
                outcomes = results[f"{transport} {url}"]
                assert all(_refused_with_hint(o) or "HTTP 404" in o for o in outcomes), (url, outcomes)
                if name.startswith(("file-", "ftp", "data")) and not url.endswith("page.html"):
                    # the gate, not a later accident, stopped it (a page only considers http(s) links: it
                    # finds nothing)
                    assert any("refusing" in o for o in outcomes), (url, outcomes)
        manifest = results[f"{transport} {multi[0]}"]
        assert manifest[0] == "ok" and len(manifest) == 1 + 2 * len(_targets(wires)), manifest
        assert all(_refused_with_hint(o) for o in manifest[1:]), manifest
        assert sum("refusing" in o for o in manifest) >= 14, manifest  # file://, ftp:, data: in both forms
        bulk = results[f"{transport} {multi[1]}"]
        assert bulk[0] == "ok" and len(bulk) == len(_targets(wires)), bulk
        assert all(_refused_with_hint(o) or "HTTP 404" in o for o in bulk[1:]), bulk
        (mixed,) = results[f"{transport} {multi[2]}"]
        assert mixed.startswith("DownloadError: Only 1 tiles out of 2") and "refusing to read" in mixed, mixed
        assert mixed.endswith("|| Some tiles are local files or non-http(s) URLs, which were not read: a document "
                              "fetched over http(s) may only point to http(s) URLs, and a local input only to files "
                              "in its own folder."), mixed


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cli_refuses_with_one_error_and_a_hint(serve, wires, tmp_path, transport):
    base, per_target, multi = _hostile_site(serve, wires)
    fast = ["-i", "0ms", "-r", "0", "--timeout", "5s", "--transport", transport]
    one = run_isolated([*fast, per_target["file-secret"][3], str(tmp_path / "a.png")], rss_mb=RSS_MB, seconds=60)
    one.assert_contained(RSS_MB)
    assert one.returncode == 1 and one.one_error_line().startswith("error: No dezoomer could open"), one.stderr
    assert "- custom: refusing to read the local file" in one.stderr
    assert [ln for ln in one.stderr.splitlines() if ln.startswith("hint:")][0].startswith(
        "hint: A document fetched over http(s) may only point to http(s) URLs"), one.stderr
    bulk = run_isolated([*fast, "--bulk", multi[0], str(tmp_path / "b.png")], rss_mb=RSS_MB, seconds=90)
    bulk.assert_contained(RSS_MB)
    assert bulk.returncode == 1 and "Traceback" not in bulk.stderr, bulk.stderr[-3000:]
    n = 2 * len(_targets(wires))
    assert f"{n + 1} images, 1 done, 0 partial, {n} failed" in bulk.stderr, bulk.stderr[-3000:]
    assert (tmp_path / "b_0001.png").is_file()
    assert wires.tripped() == []


def _dzi_folder(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.dzi").write_text(DZI.format(url=""))
    (folder / f"{name}_files" / "9").mkdir(parents=True)
    (folder / f"{name}_files" / "9" / "0_0.png").write_bytes(_png(256, H))
    (folder / f"{name}_files" / "9" / "1_0.png").write_bytes(_png(44, H))


def test_a_local_input_reads_its_folder_only(serve, wires, tmp_path):
    """Local files beside a local input are read (DZI tiles, a manifest's info.json, a bulk list's entries);
    files outside its folder (``..``, absolute, a symbolic link out) or not regular (a pipe) are refused,
    and so is a file of the folder when a remote document names it."""
    doc, outside = tmp_path / "doc files", tmp_path / "outside"  # (a space: file:// URLs escape it)
    _dzi_folder(doc, "a")
    _dzi_folder(outside, "b")
    _dzi_folder(doc / "sub", "c")
    (doc / "link.dzi").symlink_to(outside / "b.dzi")
    (doc / "link_files").symlink_to(outside / "b_files")
    inner = Tripwires(doc / "inner")  # a secret and a pipe *inside* the folder
    img = doc / "iiif" / "img"
    img.mkdir(parents=True)
    (img / "info.json").write_text(json.dumps({"@context": "http://iiif.io/api/image/2/context.json",
                                               "protocol": "http://iiif.io/api/image", "width": W, "height": H,
                                               "tiles": [{"width": 256, "scaleFactors": [1]}]}))
    (img / "0,0,256,200" / "256," / "0").mkdir(parents=True)
    (img / "0,0,256,200" / "256," / "0" / "default.jpg").write_bytes(_png(256, H))
    (img / "256,0,44,200" / "44," / "0").mkdir(parents=True)
    (img / "256,0,44,200" / "44," / "0" / "default.jpg").write_bytes(_png(44, H))
    (doc / "m.json").write_text(_manifest({"id": "x.png", "type": "Image", "service": [
        {"id": "iiif/img", "type": "ImageService2"}]}))
    # a remote document (reached from the local one) naming a file of the folder: refused
    remote = serve({"hop/info.json": json.dumps({
        "@context": "http://iiif.io/api/image/2/context.json", "@id": img.as_uri(), "protocol": "http://iiif.io/api/image",
        "width": W, "height": H, "tiles": [{"width": 256, "scaleFactors": [1]}]}),
        "inc.xml": f'<krpano><include url="{inner.file_url}"/></krpano>', "v.dzi": DZI.format(url=""),
        "v_files/9/0_0.png": _png(256, H), "v_files/9/1_0.png": _png(44, H)})
    (doc / "hop.json").write_text(_manifest({"id": "x.png", "type": "Image", "service": [
        {"id": f"{remote}/hop", "type": "ImageService2"}]}))
    (doc / "tour.xml").write_text(f'<krpano><include url="{remote}/inc.xml"/><image baseindex="0" multires="true" '
                                  f'tilesize="256"><level tiledimagewidth="{W}" tiledimageheight="{H}">'
                                  f'<flat url="{remote}/v_files/9/%h_%v.png"/></level></image></krpano>')
    (doc / "outside.dzi").write_text(DZI.format(url=f' Url="{outside / "b_files"}"'))
    (doc / "list.txt").write_text("\n".join([
        "a.dzi", f"{remote}/v.dzi", "sub/c.dzi", "../outside/b.dzi", str(outside / "b.dzi"), "link.dzi",
        (outside / "b.dzi").as_uri(), "inner/pipe", str(wires.fifo), wires.file_url, "/dev/zero"]) + "\n")
    with inner:
        run, results = _run_driver([str(doc / "a.dzi"), (doc / "a.dzi").as_uri(), "doc files/list.txt",
                                    str(doc / "m.json"), (doc / "m.json").as_uri(), str(doc / "hop.json"),
                                    str(doc / "tour.xml"), str(doc / "outside.dzi")], tmp_path / "out", cwd=tmp_path)
        assert inner.tripped() == [] and wires.tripped() == [], run.stderr[-3000:]
    for transport in TRANSPORTS:
        def got(url: str) -> list[str]:
            return results[f"{transport} {url}"]  # noqa: B023 - used in this iteration only

        assert got(str(doc / "a.dzi")) == ["ok"] and got((doc / "a.dzi").as_uri()) == ["ok"]
        assert got(str(doc / "m.json")) == ["ok"] and got((doc / "m.json").as_uri()) == ["ok"]
        listed = got("doc files/list.txt")
        assert listed[:3] == ["ok", "ok", "ok"], listed
        assert all("outside the input's folder" in o for o in listed[3:7] + listed[8:]), listed
        assert "not a regular file" in listed[7], listed
        assert all(_refused_with_hint(o) for o in listed[3:]), listed
        (hop,) = got(str(doc / "hop.json"))
        assert "refusing" in hop and "only point to http(s) URLs" in hop, hop
        # its remote include's include of a file of the folder is skipped (as an include that cannot be fetched)
        assert got(str(doc / "tour.xml")) == ["ok"]
        (out,) = got(str(doc / "outside.dzi"))
        assert "outside the input's folder" in out and _refused_with_hint(out), out
