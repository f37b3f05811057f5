"""What each served model takes and gives: tensor names, dtypes and shapes, the parameters its config must set,
defaults written once; the style registry and style parameters; a detector's spec file.

Data and small pure functions on numpy arrays: a service imports these to call Triton without importing the
runtime that serves the model (``fovea.serving``) or the networks (``fovea.ports``). Imports nothing else from
Fovea.
"""
