"""The package version, in a module of its own so any dtlib module can read it without import-order games."""

__version__ = "0.1.0"
