"""The zoomable-image protocols the :class:`~dezoomify_nb.testing.tileserver.TileServer` speaks, one module
each (as the dezoomers are split by format): ``geometry`` (level sizes and tiling of a kind), ``path`` (its
input URL), ``tile_path`` (the URL of one tile) and ``route`` (answer a request under ``/<kind>/``).
"""

from __future__ import annotations

from types import ModuleType

from . import deepzoom, generic, iiif, zoomify

#: kind -> its protocol module, in the order of :data:`~dezoomify_nb.testing.tileserver.KINDS`.
PROTOCOLS: dict[str, ModuleType] = {kind: mod for mod in (zoomify, deepzoom, iiif, generic) for kind in mod.KINDS}
