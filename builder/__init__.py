"""kiln's builder: the instruction graph, its solver, the image store and the exporters.

The graph types in :mod:`builder.graph` are the contract between frontends and the
builder; nothing in this package imports a frontend except :mod:`builder.cli`.
"""
