"""The text an import writes (fovea.convert.onnx_import.render): ``config.pbtxt`` as Triton reads it.

The model card and the config of each family are checked through ``import_onnx`` in test_write.py.
"""

from __future__ import annotations

from pathlib import Path

from fovea.contracts.detector import HeadFamily
from fovea.convert.onnx_import.render import render_config
from fovea.convert.onnx_import.signature import TensorInfo
from fovea.serving.base import read_config


def test_a_config_with_several_outputs_parses_as_triton_reads_it(tmp_path: Path) -> None:
    # Regression: the comma between output entries once landed inside the previous entry's comment.
    outputs = [TensorInfo(f"out{k}", "tensor(float)", (None, 10 * (k + 1), 4)) for k in range(3)]
    text = render_config(
        "multi",
        HeadFamily.NANODET,
        "images",
        TensorInfo("images", "tensor(float)", (None, 3, 64, 64)),
        (64, 64),
        outputs,
        ["A", "B", "C"],
    )
    (tmp_path / "config.pbtxt").write_text(text)
    config = read_config(tmp_path / "config.pbtxt")
    assert [o["name"] for o in config["output"]] == ["A", "B", "C"]
