"""The command line: ``f5vi {serve,synth,normalize,voices,export-openapi,make-demo-model}``.

``main`` parses the arguments; each command lives in a module of its own and drives the same job core
(:mod:`f5vi.jobs`) and engine the servers use, never an HTTP schema.
"""

from f5vi.cli.app import main

__all__ = ["main"]
