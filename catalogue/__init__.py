"""unitcat's library: everything that computes or stores.

The CLI (`ingest`) and the UI (`ui`) import this package; it imports neither.
"""

__version__ = "0.1.0"
