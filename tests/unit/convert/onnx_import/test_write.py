"""`fovea models import-onnx` (fovea.convert.onnx_import.write.import_onnx) end to end: the files it writes,
the runner that serves them, the layouts it finds (layout, families), the mistakes it refuses.

The ONNX models are synthetic (tests/onnx_detectors.py): constant predictions, so expected boxes are exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx_detectors import (
    constant_detector,
    constant_outputs,
    detr_predictions,
    dfine_like,
    end2end_predictions,
    nms_in_graph_predictions,
    yolov5_predictions,
    yolov8_predictions,
)

from fovea.common.detectors.heads import decode
from fovea.contracts.detector import HeadFamily, load_spec
from fovea.convert.onnx_import import (
    ImportOptions,
    import_onnx,
    is_imported,
    model_config_json,
    preflight,
)
from fovea.detection.registry import DetectorRegistry, load_detectors
from fovea.serving.base import RequestError
from fovea.serving.onnx_detector import OnnxDetector, load_from_repository

LABELS = ["widget", "gadget"]
# Two boxes in 640x640 input pixels (xyxy): a widget scored 0.9 and a gadget scored 0.8.
BOXES = [(100.0, 160.0, 300.0, 360.0), (400.0, 280.0, 600.0, 520.0)]


def yolov8_model(tmp_path: Path, **kwargs: object) -> Path:
    predictions = yolov8_predictions(BOXES, [0, 1], [0.9, 0.8], num_classes=2)
    return constant_detector(tmp_path / "toy-v8.onnx", predictions, **kwargs)  # type: ignore[arg-type]


def yolov5_model(tmp_path: Path, **kwargs: object) -> Path:
    predictions = yolov5_predictions(BOXES, [0, 1], [0.9, 0.8], num_classes=2)
    return constant_detector(tmp_path / "toy-v5.onnx", predictions, **kwargs)  # type: ignore[arg-type]


def options(family: str = "yolov8", **kwargs: object) -> ImportOptions:
    kwargs.setdefault("raw_outputs", True)  # these tests read the raw outputs; in-graph decoding: below
    return ImportOptions(family=family, labels=list(LABELS), **kwargs)  # type: ignore[arg-type]


def runner_for(model_dir: Path) -> OnnxDetector:
    return load_from_repository(model_dir)  # exactly what Triton's initialize does, in-process


def run(runner: OnnxDetector, images: np.ndarray) -> dict[str, np.ndarray]:
    (result,) = runner.execute([{"INPUT": images}])
    assert isinstance(result, dict), result
    return result


# --- what is written ---------------------------------------------------------------------------


def test_yolov8_import_writes_a_triton_model(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    result = import_onnx(yolov8_model(tmp_path), repo, "toy", options())
    model = repo / "toy"
    assert result.directory == model and result.warnings == []
    assert sorted(p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file()) == [
        "1/model.onnx",
        "1/model.py",
        "MODEL_CARD.md",
        "config.pbtxt",
        "fovea.json",
    ]
    served = onnx.load(str(model / "1" / "model.onnx"))  # the source behind the uint8 prefix
    assert [i.name for i in served.graph.input] == ["INPUT"] and [o.name for o in served.graph.output] == [
        "OUTPUT0"
    ]
    assert served.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    config = json.loads(model_config_json((model / "config.pbtxt").read_text()))  # Triton's own proto
    assert config["name"] == "toy" and config["backend"] == "python"
    assert config["max_batch_size"] == 8 and "dynamic_batching" in config
    assert config["input"] == [{"name": "INPUT", "data_type": "TYPE_UINT8", "dims": ["640", "640", "3"]}]
    # ONNX output0 is [batch, 4 + 2, 100]: per image (6, 100), named in UPPER_SNAKE
    assert config["output"] == [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": ["6", "100"]}]
    assert config["instance_group"] == [{"kind": "KIND_CPU", "count": 2}]
    params = {k: v["string_value"] for k, v in config["parameters"].items()}
    assert params == {"WEIGHTS": "model.onnx", "DEVICE": "auto", "THREADS": "0", "BATCH_SPLIT": "1"}
    spec = load_spec(model)
    assert spec == result.spec
    assert spec.family is HeadFamily.YOLOV8 and spec.labels == LABELS and spec.input_size == (640, 640)
    assert spec.input_name == "INPUT" and spec.output_names == ["OUTPUT0"]
    assert spec.input_format == "uint8_nhwc"
    assert "python_model(Path(__file__).parent)" in (model / "1" / "model.py").read_text()
    assert "batch dimension is dynamic: a gathered batch runs as one" in (model / "config.pbtxt").read_text()
    card = (model / "MODEL_CARD.md").read_text()
    assert "toy-v8.onnx" in card and "sha256" in card and "fovea-tests" in card
    assert is_imported(model)
    # The detection service's registry reads it beside the platform's repository.
    platform = tmp_path / "platform"
    (platform / "nanodet").mkdir(parents=True)
    (platform / "nanodet" / "fovea.json").write_text(
        spec.model_copy(update={"name": "nanodet"}).model_dump_json()
    )
    assert set(load_detectors([platform, repo], "nanodet")) == {"nanodet", "toy"}


def test_runner_and_decoder_give_back_the_encoded_boxes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    spec = import_onnx(yolov8_model(tmp_path), repo, "toy", options()).spec
    runner = runner_for(repo / "toy")
    assert runner.fixed_batch is None
    out = run(runner, np.random.default_rng(0).integers(0, 256, (3, 640, 640, 3), dtype=np.uint8))
    assert out["OUTPUT0"].shape == (3, 6, 100) and out["OUTPUT0"].dtype == np.float32
    boxes, scores, class_ids = decode({"OUTPUT0": out["OUTPUT0"][1]}, spec, 0.5)
    assert boxes.tolist() == [list(b) for b in BOXES]
    assert scores.tolist() == pytest.approx([0.9, 0.8]) and class_ids.tolist() == [0, 1]
    assert preflight(repo / "toy").startswith("onnxruntime CPUExecutionProvider")


def test_fixed_batch_runs_in_chunks(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    result = import_onnx(yolov5_model(tmp_path, batch=1), repo, "toy5", options("yolov5"))
    assert result.spec.family is HeadFamily.YOLOV5
    assert "fixed at 1: a gathered batch runs in chunks of 1" in (repo / "toy5" / "config.pbtxt").read_text()
    runner = runner_for(repo / "toy5")
    assert runner.fixed_batch == 1
    out = run(runner, np.zeros((3, 640, 640, 3), np.uint8))["OUTPUT0"]
    assert out.shape == (3, 100, 7)  # (N, 5 + C) per image, three images
    boxes, scores, class_ids = decode({"OUTPUT0": out[2]}, result.spec, 0.5)
    assert boxes.tolist() == [list(b) for b in BOXES] and class_ids.tolist() == [0, 1]


def test_dynamic_input_size_and_preprocessing_options(tmp_path: Path) -> None:
    source = yolov8_model(tmp_path, input_shape=["batch", 3, "height", "width"])
    chosen = options(
        input_size=(512, 384),
        channel_order="BGR",
        scale=1.0,
        mean=(103.53, 116.28, 123.675),
        std=(57.375, 57.12, 58.395),
        pad_value=0.0,
        letterbox=False,
    )
    spec = import_onnx(source, tmp_path / "repo", "wide", chosen).spec
    assert spec.input_size == (512, 384) and spec.channel_order == "BGR" and not spec.letterbox
    assert spec.mean == (103.53, 116.28, 123.675) and spec.pad_value == 0.0
    config = json.loads(model_config_json((tmp_path / "repo" / "wide" / "config.pbtxt").read_text()))
    assert config["input"][0]["dims"] == ["384", "512", "3"]  # [H, W, 3]


def test_force_replaces_and_a_refused_import_changes_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    import_onnx(yolov8_model(tmp_path), repo, "toy", options())
    before = (repo / "toy" / "fovea.json").read_text()
    with pytest.raises(ValueError, match="already exists: pass --force"):
        import_onnx(yolov8_model(tmp_path), repo, "toy", options())
    with pytest.raises(ValueError, match="C = 3 labels"):
        import_onnx(yolov8_model(tmp_path), repo, "toy", ImportOptions("yolov8", ["a", "b", "c"]), force=True)
    assert (repo / "toy" / "fovea.json").read_text() == before
    assert sorted(p.name for p in repo.iterdir()) == ["toy"]  # no staging directory left behind
    import_onnx(yolov5_model(tmp_path), repo, "toy", options("yolov5"), force=True)
    assert load_spec(repo / "toy").family is HeadFamily.YOLOV5


def test_a_name_served_by_another_repository_is_refused(tmp_path: Path) -> None:
    platform = tmp_path / "platform"
    (platform / "nanodet").mkdir(parents=True)
    with pytest.raises(ValueError, match="'nanodet' is taken by"):
        import_onnx(
            yolov8_model(tmp_path), tmp_path / "repo", "nanodet", options(), other_repositories=[platform]
        )


# --- refused mistakes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "chosen", "message"),
    [
        # 2-class yolov8 model, 3 labels: 4 + 3 = 7 is neither axis of (6, 100)
        (
            "v8",
            ImportOptions("yolov8", ["a", "b", "c"]),
            r"C = 3 labels, got \(6, 100\) \(the model seems to predict 2",
        ),
        ("v8", ImportOptions("yolov5", LABELS), r"\(N, 5 \+ C\).*got \(6, 100\).*yolov8 export"),
        (
            "v5",
            ImportOptions("yolov8", LABELS),
            r"got \(100, 7\) \(it fits 5 \+ C: a yolov5 or yolox export\?\)",
        ),
        (
            "v5",
            ImportOptions("yolox", LABELS),
            r"yolox output has 100 anchors but strides \[8, 16, 32\] give 8400",
        ),
        ("v5", ImportOptions("yolo-grid", LABELS), "yolo-grid needs --anchors"),
        ("v5", ImportOptions("nanodet", LABELS), r"nanodet output width 7 is not C \+ 4"),
        ("v8", ImportOptions("yolov9", LABELS), "unknown head family 'yolov9'; known: nanodet, yolo-grid"),
        (
            "v8",
            ImportOptions("yolov8", LABELS, input_size=(320, 320)),
            "differs from the model's fixed input 640x640",
        ),
        (
            "v8",
            ImportOptions("yolov8", LABELS, mean=(0.5, 0.5, 0.5), std=(0.0, 1.0, 1.0)),
            "std values must all be > 0",
        ),
    ],
)
def test_mistakes_are_refused(tmp_path: Path, build: str, chosen: ImportOptions, message: str) -> None:
    source = yolov8_model(tmp_path) if build == "v8" else yolov5_model(tmp_path)
    with pytest.raises(ValueError, match=message):
        import_onnx(source, tmp_path / "repo", "toy", chosen)
    assert not (tmp_path / "repo" / "toy").exists()


def test_yolox_decoded_is_accepted(tmp_path: Path) -> None:
    spec = import_onnx(yolov5_model(tmp_path), tmp_path / "repo", "tx", options("yolox", decoded=True)).spec
    assert spec.family is HeadFamily.YOLOX and spec.decoded


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_shape": [1, 640, 640, 3]}, "it looks NHWC"),
        ({"input_shape": ["batch", 3, "h", "w"]}, "dynamic size .* give the input size"),
        ({"extra_input": True}, "exactly one input .* 2: \\['images', 'extra'\\]"),
        ({"keep_batch": False}, "the batch dimension must come first"),
    ],
)
def test_malformed_graphs_are_refused(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        import_onnx(yolov8_model(tmp_path, **kwargs), tmp_path / "repo", "toy", options())


def test_not_an_onnx_file(tmp_path: Path) -> None:
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not a protobuf")
    with pytest.raises(ValueError, match="onnxruntime cannot load model.onnx"):
        import_onnx(bogus, tmp_path / "repo", "toy", options())


def test_scores_outside_zero_one_warn(tmp_path: Path) -> None:
    logits = yolov8_predictions(BOXES, [0, 1], [4.0, -3.0], num_classes=2)  # raw logits, no sigmoid
    source = constant_detector(tmp_path / "logits.onnx", logits)
    result = import_onnx(source, tmp_path / "repo", "toy", options(strides=[8, 16, 32]))
    assert any("outside [0, 1]" in w for w in result.warnings)
    assert any("--strides is for nanodet and yolox only" in w for w in result.warnings)


def test_served_detector_answers_each_request_on_its_own(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    import_onnx(yolov8_model(tmp_path), repo, "toy", options())
    runner = runner_for(repo / "toy")
    good = np.zeros((1, 640, 640, 3), np.uint8)
    results = runner.execute(
        [{"INPUT": good}, {"INPUT": good.astype(np.float32)}, {"INPUT": good[:, :320]}, {"INPUT": good}]
    )
    assert isinstance(results[1], RequestError) and "uint8" in str(results[1])
    assert isinstance(results[2], RequestError) and "shape" in str(results[2])
    assert all(isinstance(results[i], dict) and results[i]["OUTPUT0"].shape == (1, 6, 100) for i in (0, 3))
    assert "CPUExecutionProvider" in runner.describe() and "dynamic batch" in runner.describe()


def test_a_config_that_does_not_match_the_file_is_refused(tmp_path: Path) -> None:
    from fovea.serving.onnx_detector import load_served

    repo = tmp_path / "repo"
    import_onnx(yolov8_model(tmp_path), repo, "toy", options())
    config = json.loads(model_config_json((repo / "toy" / "config.pbtxt").read_text()))
    config["output"][0]["name"] = "SCORES"
    with pytest.raises(ValueError, match="no output SCORES"):
        load_served(repo / "toy" / "1", config)
    config["input"][0]["data_type"] = "TYPE_FP32"
    with pytest.raises(ValueError, match="uint8 input"):
        load_served(repo / "toy" / "1", config)


# --- the registry picks up imported models --------------------------------------------------------


def test_registry_rescans_for_unknown_names(tmp_path: Path) -> None:
    platform, user = tmp_path / "platform", tmp_path / "user"
    (platform / "nanodet").mkdir(parents=True)
    spec = import_onnx(yolov8_model(tmp_path), tmp_path / "staging", "toy", options()).spec
    (platform / "nanodet" / "fovea.json").write_text(
        spec.model_copy(update={"name": "nanodet"}).model_dump_json()
    )
    registry = DetectorRegistry([platform, user], "nanodet")  # the user repository does not exist yet
    assert registry.get("toy") is None
    import_onnx(yolov8_model(tmp_path), user, "toy", options())
    assert registry.get("toy") == spec
    (user / "broken").mkdir()
    (user / "broken" / "fovea.json").write_text("{}")
    registry.rescan()  # an invalid user spec is skipped, the others stay
    assert set(registry.specs) == {"nanodet", "toy"}
    with pytest.raises(ValueError, match="invalid detector spec"):
        DetectorRegistry([platform, user], "nanodet")  # but start-up is strict


# --- end-to-end families: told from the outputs, no NMS after ------------------------------------

THREE = ["widget", "gadget", "sprocket"]  # 3 classes: rows of 6 are not 4 + C (C = 2 would be ambiguous)


def imported(tmp_path: Path, source: Path, name: str, labels: list[str] = THREE, **kwargs: object) -> tuple:
    """Import ``source`` (family told from its outputs unless given), run it on 2 images in-process as
    Triton would, decode image 1: ``(result, outputs, (boxes, scores, class_ids))``."""
    repo = tmp_path / "repo"
    kwargs.setdefault("family", None)
    result = import_onnx(source, repo, name, ImportOptions(labels=list(labels), **kwargs))  # type: ignore[arg-type]
    out = run(runner_for(repo / name), np.zeros((2, 640, 640, 3), np.uint8))
    assert preflight(repo / name).startswith("onnxruntime")
    return result, out, decode({n: a[1] for n, a in out.items()}, result.spec, 0.5)


def assert_boxes(decoded: tuple) -> None:
    boxes, scores, class_ids = decoded
    order = scores.argsort(descending=True)
    np.testing.assert_allclose(boxes[order].numpy(), np.array(BOXES), atol=1e-3)
    assert scores[order].tolist() == pytest.approx([0.9, 0.8], abs=1e-5)
    assert class_ids[order].tolist() == [0, 2]


def test_end2end_is_found_and_read(tmp_path: Path) -> None:
    rows = end2end_predictions(BOXES, [0, 2], [0.9, 0.8])
    result, out, decoded = imported(tmp_path, constant_detector(tmp_path / "e2e.onnx", rows), "e2e")
    assert result.spec.family is HeadFamily.END2END and not result.spec.boxes_normalised
    assert result.layout.startswith("found end2end: one output (output0 (300, 6))")
    assert "boxes in input pixels (they reach 600)" in result.layout and "no NMS" in result.layout
    assert out["OUTPUT0"].shape == (2, 300, 6)
    assert_boxes(decoded)


def test_end2end_normalised_boxes_need_the_flag(tmp_path: Path) -> None:
    rows = end2end_predictions(BOXES, [0, 2], [0.9, 0.8], normalise_by=(640, 640))
    source = constant_detector(tmp_path / "e2e.onnx", rows)
    with pytest.raises(ValueError, match="within \\[0, 1\\]: pass --boxes normalised .* --boxes pixels"):
        import_onnx(source, tmp_path / "repo", "e2e", ImportOptions(None, THREE))
    result, _, decoded = imported(tmp_path, source, "e2e", boxes="normalised")
    assert result.spec.boxes_normalised and "boxes as fractions of the input (--boxes)" in result.layout
    assert_boxes(decoded)


def test_two_classes_make_rows_of_six_ambiguous(tmp_path: Path) -> None:
    rows = end2end_predictions(BOXES, [0, 1], [0.9, 0.8])
    source = constant_detector(tmp_path / "e2e.onnx", rows)
    with pytest.raises(ValueError, match="fits end2end \\(rows of 6\\), yolov8 .*: pass --family"):
        import_onnx(source, tmp_path / "repo", "e2e", ImportOptions(None, LABELS))
    spec = import_onnx(source, tmp_path / "repo", "e2e", ImportOptions("end2end", LABELS)).spec
    assert spec.family is HeadFamily.END2END


def test_detr_two_outputs_with_logits(tmp_path: Path) -> None:
    boxes, logits = detr_predictions(BOXES, [0, 2], [0.9, 0.8], num_classes=3, logits=True)
    source = constant_outputs(tmp_path / "detr.onnx", {"pred_boxes": boxes, "pred_logits": logits})
    result, out, decoded = imported(tmp_path, source, "detr")
    spec = result.spec
    assert spec.family is HeadFamily.DETR and spec.score_activation == "sigmoid"
    assert spec.output_names == ["PRED_BOXES", "PRED_LOGITS"]
    assert result.layout.startswith("found detr: 2 outputs") and "logits" in result.layout
    assert out["PRED_LOGITS"].shape == (2, 300, 3)
    assert_boxes(decoded)


def test_detr_outputs_in_either_order_and_named_by_flag(tmp_path: Path) -> None:
    boxes, probs = detr_predictions(BOXES, [0, 2], [0.9, 0.8], num_classes=3)
    source = constant_outputs(tmp_path / "detr.onnx", {"scores": probs, "boxes": boxes})
    result, _, decoded = imported(tmp_path, source, "detr")
    assert result.spec.output_names == ["BOXES", "SCORES"] and result.spec.score_activation == "none"
    assert_boxes(decoded)
    # C = 4: both outputs are (Q, 4); the names tell, else --outputs does
    boxes4, probs4 = detr_predictions(BOXES, [0, 2], [0.9, 0.8], num_classes=4)
    odd = constant_outputs(tmp_path / "odd.onnx", {"a": probs4, "b": boxes4})
    four = [*THREE, "gizmo"]
    with pytest.raises(ValueError, match="pass --outputs BOXES,SCORES"):
        import_onnx(odd, tmp_path / "repo", "odd", ImportOptions("detr", four))
    result, _, decoded = imported(tmp_path, odd, "odd", four, family="detr", outputs=["b", "a"])
    assert_boxes(decoded)


def test_detr_single_output_with_probabilities(tmp_path: Path) -> None:
    boxes, probs = detr_predictions(BOXES, [0, 2], [0.9, 0.8], num_classes=3)
    source = constant_detector(tmp_path / "rtdetr.onnx", np.concatenate([boxes, probs], axis=1))
    result, _, decoded = imported(tmp_path, source, "rtdetr")
    assert result.spec.family is HeadFamily.DETR and result.spec.score_activation == "none"
    assert "all lie within [0, 1]" in result.layout and "probabilities" in result.layout
    assert_boxes(decoded)


def test_nms_in_graph_keeps_integer_outputs(tmp_path: Path) -> None:
    source = constant_outputs(tmp_path / "nms.onnx", nms_in_graph_predictions(BOXES, [0, 2], [0.9, 0.8]))
    result, out, decoded = imported(tmp_path, source, "nms")
    spec = result.spec
    assert spec.family is HeadFamily.NMS_IN_GRAPH
    assert spec.output_names == ["NUM_DETS", "DET_BOXES", "DET_SCORES", "DET_CLASSES"]
    assert "count = num_dets, boxes = det_boxes" in result.layout
    config = (tmp_path / "repo" / "nms" / "config.pbtxt").read_text()
    assert 'name: "NUM_DETS" data_type: TYPE_INT32 dims: [ 1 ]' in config
    assert 'name: "DET_CLASSES" data_type: TYPE_INT32 dims: [ 100 ]' in config
    assert 'name: "DET_SCORES" data_type: TYPE_FP32' in config
    assert out["NUM_DETS"].dtype == np.int32 and out["DET_CLASSES"].dtype == np.int32
    assert_boxes(decoded)  # the decoy scored 0.99 past num_dets is not read


def test_a_dfine_export_gets_its_size_input_bound(tmp_path: Path) -> None:
    # images + orig_target_sizes in, labels / boxes / scores out: boxes come out in input pixels only when
    # the size input holds the input's (width, height)
    source = dfine_like(tmp_path / "dfine.onnx", BOXES, [0, 2], [0.9, 0.8])
    result, out, decoded = imported(tmp_path, source, "dfine")
    spec = result.spec
    assert spec.family is HeadFamily.NMS_IN_GRAPH and spec.output_names == ["BOXES", "SCORES", "LABELS"]
    assert "input 'orig_target_sizes' is bound to the input size [640, 640]" in result.layout
    assert out["LABELS"].dtype == np.int64 and out["BOXES"].shape == (2, 300, 4)
    served = onnx.load(str(tmp_path / "repo" / "dfine" / "1" / "model.onnx"))
    assert [i.name for i in served.graph.input] == ["INPUT"]
    assert_boxes(decoded)


def test_a_second_input_other_than_a_size_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="accepted only when it is the image size"):
        import_onnx(yolov8_model(tmp_path, extra_input=True), tmp_path / "repo", "x", options())


def test_nms_in_graph_roles_need_names_when_types_do_not_tell(tmp_path: Path) -> None:
    arrays = nms_in_graph_predictions(BOXES, [0, 2], [0.9, 0.8])
    floats = {
        "n": arrays["num_dets"],
        "o1": arrays["det_boxes"],
        "o2": arrays["det_scores"],
        "o3": arrays["det_classes"].astype(np.float32),
    }
    source = constant_outputs(tmp_path / "nms.onnx", floats)
    with pytest.raises(ValueError, match="pass --outputs COUNT,BOXES,SCORES,CLASSES"):
        import_onnx(source, tmp_path / "repo", "nms", ImportOptions(None, THREE))
    _, _, decoded = imported(tmp_path, source, "nms", outputs=["n", "o1", "o2", "o3"])
    assert_boxes(decoded)


def test_families_told_from_shapes_or_refused_with_the_flags(tmp_path: Path) -> None:
    result = import_onnx(yolov8_model(tmp_path), tmp_path / "repo", "v8", ImportOptions(None, LABELS))
    assert result.spec.decoded_from is HeadFamily.YOLOV8 and "channels first" in result.layout
    assert result.spec.family is HeadFamily.CANDIDATES and "decoded in the graph" in result.layout
    with pytest.raises(ValueError, match="fits yolov5 and yolox: pass --family yolov5 or --family yolox"):
        import_onnx(yolov5_model(tmp_path), tmp_path / "repo", "v5", ImportOptions(None, LABELS))
    given = import_onnx(yolov5_model(tmp_path), tmp_path / "repo", "v5", options("yolov5"))
    assert given.layout.startswith("yolov5 (--family): outputs output0 (100, 7)")
    with pytest.raises(ValueError, match="yolov8 outputs must be floating point"):
        source = constant_outputs(tmp_path / "int.onnx", {"out": np.zeros((6, 100), np.int64)})
        import_onnx(source, tmp_path / "repo", "int", options())


def test_boxes_and_scores_in_pixels_are_not_taken_for_a_detr(tmp_path: Path) -> None:
    # a YOLO graph cut before NMS: boxes (N, 4) in pixels and per-class scores (N, C)
    boxes = np.tile(np.array([[100.0, 160.0, 300.0, 360.0]], np.float32), (50, 1))
    source = constant_outputs(
        tmp_path / "split.onnx", {"boxes": boxes, "scores": np.zeros((50, 3), np.float32)}
    )
    with pytest.raises(ValueError, match="boxes reach 360 .* not the fractions a DETR gives"):
        import_onnx(source, tmp_path / "repo", "split", ImportOptions(None, THREE))
    forced = import_onnx(source, tmp_path / "repo", "split", ImportOptions("detr", THREE))
    assert any("trial image's reach 360" in w for w in forced.warnings)


def _with_names(path: Path, names: str) -> Path:
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {"names": names, "task": "detect"})  # as Ultralytics writes them
    onnx.save(model, str(path))
    return path


def test_labels_from_an_ultralytics_export_s_metadata(tmp_path: Path) -> None:
    rows = end2end_predictions(BOXES, [0, 2], [0.9, 0.8])
    source = _with_names(
        constant_detector(tmp_path / "e2e.onnx", rows), "{0: 'widget', 1: 'gadget', 2: 'sprocket'}"
    )
    result = import_onnx(source, tmp_path / "repo", "e2e", ImportOptions(None, []))
    assert result.spec.labels == THREE and result.warnings == []
    other = import_onnx(source, tmp_path / "repo", "e2e2", ImportOptions(None, ["a", "b", "c"]))
    assert other.spec.labels == ["a", "b", "c"]
    assert other.warnings[0].startswith("the labels given (3) differ from the 3 names in e2e.onnx's metadata")
    bare = constant_detector(tmp_path / "bare.onnx", rows)
    with pytest.raises(ValueError, match="bare.onnx has no class names in its metadata: give --labels"):
        import_onnx(bare, tmp_path / "repo", "bare", ImportOptions(None, []))
