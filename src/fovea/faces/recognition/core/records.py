"""What the faces store keeps in Redis as bytes (template records), and the rules for ids and metadata.

A template record is ``b"FT1" + JSON header + b"\\n" + embedding`` (little-endian float32), so a gallery of a
million templates loads without parsing a million JSON arrays.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np

from fovea.common.errors import clip

MAGIC = b"FT1"
GALLERY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # whole string: fullmatch ("$" allows a "\n")
MAX_IDENTITY_ID = 128
MAX_METADATA_ENTRIES = 32
MAX_METADATA_BYTES = 4096


@dataclass(frozen=True, eq=False)
class TemplateRecord:
    template_id: str
    identity_id: str
    embedding_model: str
    created_ms: int
    embedding: np.ndarray = field(repr=False)  # (dim,) float32


def encode_template(record: TemplateRecord) -> bytes:
    header = json.dumps(
        {
            "t": record.template_id,
            "i": record.identity_id,
            "m": record.embedding_model,
            "c": int(record.created_ms),
        },
        separators=(",", ":"),
    ).encode()
    vector = np.ascontiguousarray(record.embedding, dtype="<f4").reshape(-1)
    return MAGIC + header + b"\n" + vector.tobytes()


def decode_template(data: bytes) -> TemplateRecord:
    if not data.startswith(MAGIC):
        raise ValueError("not a faces template record (bad magic)")
    end = data.find(b"\n", len(MAGIC))
    if end < 0:
        raise ValueError("truncated faces template record")
    header = json.loads(data[len(MAGIC) : end])
    if (len(data) - end - 1) % 4:
        raise ValueError("faces template record has a partial float")
    vector = np.frombuffer(data, dtype="<f4", offset=end + 1)  # a read-only view of ``data``
    return TemplateRecord(
        template_id=str(header["t"]),
        identity_id=str(header["i"]),
        embedding_model=str(header["m"]),
        created_ms=int(header["c"]),
        embedding=vector.astype(np.float32, copy=False),
    )


# ---------------------------------------------------------------------------------------------- ids


def check_gallery_id(gallery_id: str) -> str:
    if not GALLERY_ID.fullmatch(gallery_id):
        raise ValueError(
            f"gallery_id {gallery_id!r} is not valid: 1-64 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return gallery_id


def check_door_id(door_id: str) -> str:
    """Door ids follow the gallery id rule: they name audit streams and policies, so no blanks, wildcards
    or path characters."""
    if not GALLERY_ID.fullmatch(door_id):
        raise ValueError(
            f"door_id {clip(door_id)!r} is not valid: 1-64 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return door_id


def check_identity_id(identity_id: str) -> str:
    if not identity_id or len(identity_id) > MAX_IDENTITY_ID:
        raise ValueError(f"identity_id must have 1-{MAX_IDENTITY_ID} characters, got {len(identity_id)}")
    if not identity_id.isprintable() or identity_id != identity_id.strip():
        raise ValueError(f"identity_id {identity_id!r} must be printable, without leading or trailing blanks")
    return identity_id


def check_metadata(metadata: dict[str, str]) -> dict[str, str]:
    size = sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())
    if len(metadata) > MAX_METADATA_ENTRIES or size > MAX_METADATA_BYTES:
        raise ValueError(
            f"metadata is limited to {MAX_METADATA_ENTRIES} entries and {MAX_METADATA_BYTES} bytes, "
            f"got {len(metadata)} entries and {size} bytes"
        )
    return dict(metadata)


def check_threshold(threshold: float) -> float:
    if not (threshold == threshold and 0.0 <= threshold <= 4.0):  # NaN fails the first test
        raise ValueError(f"threshold must be within [0, 4] (0 = the model's default), got {threshold}")
    return threshold


__all__ = [
    "TemplateRecord",
    "check_door_id",
    "check_gallery_id",
    "check_identity_id",
    "check_metadata",
    "check_threshold",
    "decode_template",
    "encode_template",
]
