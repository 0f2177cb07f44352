"""Thumbnails, made at the door's level in :mod:`dezoomify_nb.thumbnail` (the rich display uses them too):
re-exported here for the widgets (one cache, shared by the picker and the rich display)."""

from ..thumbnail import *  # noqa: F403
