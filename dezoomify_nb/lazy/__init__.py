"""Lazy access: each level as a read-only zarr Store wrapped by dask; strips for writers."""
