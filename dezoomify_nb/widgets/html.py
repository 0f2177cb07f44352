"""The rich display's HTML, built at the door's level in :mod:`dezoomify_nb.display` (which must not import
the widgets): re-exported here for the widgets (the picker's own HTML fallback)."""

from ..display import *  # noqa: F403
from ..display import _link as _link
