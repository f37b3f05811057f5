"""Typed Python client of the Fovea gateway: ``from fovea.client import FoveaClient``."""

from fovea.client.client import (
    Classification,
    ClassifyResult,
    Detection,
    DetectResult,
    FoveaClient,
    FoveaClientError,
    IdentifiedFace,
    VerifyResult,
)

__all__ = [
    "Classification",
    "ClassifyResult",
    "DetectResult",
    "Detection",
    "FoveaClient",
    "FoveaClientError",
    "IdentifiedFace",
    "VerifyResult",
]
