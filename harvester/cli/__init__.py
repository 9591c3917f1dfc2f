"""The ``harvester`` command line."""
