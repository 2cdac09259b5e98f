"""Bundled reference data (exercise catalog, session templates): shipped in the package, read
with importlib.resources, imported to SQL on first use, updated with preview/apply/reset."""
