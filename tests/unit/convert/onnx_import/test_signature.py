"""Reading the graph (fovea.convert.onnx_import.signature): the class names an export keeps in its metadata.

Inputs, outputs and the trial run are checked through ``import_onnx`` in test_write.py.
"""

from __future__ import annotations

import pytest

from fovea.convert.onnx_import.signature import labels_from_metadata


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ("{0: 'person', 1: 'traffic light'}", ["person", "traffic light"]),
        ("['a', 'b']", ["a", "b"]),
        ("{1: 'a'}", None),  # indices must be 0..n-1
        ("{0: 'a', 1: 'a'}", None),  # duplicates
        ("__import__('os')", None),  # a literal only
        ("", None),
    ],
)
def test_labels_from_metadata(names: str, expected: list[str] | None) -> None:
    assert labels_from_metadata({"names": names}) == expected
