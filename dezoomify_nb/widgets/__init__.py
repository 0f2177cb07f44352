"""Notebook widgets: the picker (:func:`widget`), the deep-zoom viewer, thumbnails and rich display.

>>> import dezoomify_nb as dz
>>> dz.widget()                                  # doctest: +SKIP
>>> dz.widget("https://host/iiif/abc/info.json")  # doctest: +SKIP

Needs ipywidgets (a dependency) and anywidget (``pip install 'dezoomify_nb[notebook]'``) for the viewer.
"""

from __future__ import annotations

from .picker import ImagePicker, widget

__all__ = ["ImagePicker", "widget"]
