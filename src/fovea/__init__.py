"""Fovea: an open-source vision inference platform."""
