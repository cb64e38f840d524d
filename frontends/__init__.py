"""Frontends turn a build definition (a Dockerfile) into the instruction graph of
:mod:`builder.graph`. They never run anything."""
