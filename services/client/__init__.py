"""Typed Python client of the Fovea gateway: ``from fovea.client import FoveaClient``."""

from fovea.client.client import (
    Detection,
    DetectResult,
    FoveaClient,
    FoveaClientError,
    IdentifiedFace,
    VerifyResult,
)

__all__ = ["DetectResult", "Detection", "FoveaClient", "FoveaClientError", "IdentifiedFace", "VerifyResult"]
