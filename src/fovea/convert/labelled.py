"""A labelled set of sample photos (boxes drawn by eye) and its writer, as a YOLO folder and as COCO JSON.

``LABELLED_SET`` is ``fovea.convert.samples.LABELLED_BOXES`` (12 boxes on four darknet photos, kept as they
are) grown to 36 boxes on ten photos: every photo comes out of a registry package (Debian's darknet, the
scikit-image wheel), nothing from a model hub. Each box was drawn by eye on the photo, then drawn onto a copy
with Pillow and looked at, and moved until tight (xyxy pixels, COCO class names).

The rule for what is labelled: every object of a COCO class a person would label at a glance, including
partly hidden ones (the child behind his father, the motorbike behind leaves, the bench behind the
motorcycle), when at least half of it is in the frame and its longer side is at least 16 pixels. Left out
by that rule: in kite.jpg a kite about 10 pixels tall and the kite surfers' kites and people farther out
(under 16 pixels), in motorcycle_left.png the bicycle cut by the left edge. Objects of no COCO class (the
rocket model, the tripod and video camera, the saucer) are not labelled.

    fovea detect eval DIR                                # DIR written by write_labelled_set
    fovea detect eval --coco DIR/instances.json --images DIR/images
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from PIL import Image

from fovea.convert.samples import LABELLED_BOXES, sample

__all__ = ["LABELLED_SET", "Boxes", "write_labelled_set"]

Boxes = Mapping[str, Sequence[tuple[str, tuple[int, int, int, int]]]]
"""Photo name (``fovea.convert.samples.sample``) -> ``(COCO class name, (x1, y1, x2, y2) pixels)`` list."""

LABELLED_SET: dict[str, list[tuple[str, tuple[int, int, int, int]]]] = {
    # the 12 boxes of LABELLED_BOXES, and what they left out on dog.jpg
    **{name: list(boxes) for name, boxes in LABELLED_BOXES.items()},
    "dog": [
        *LABELLED_BOXES["dog"],
        ("truck", (467, 76, 692, 169)),  # the white pickup across the street
        ("motorcycle", (56, 72, 102, 122)),  # red, parked behind the leaves at the top left
    ],
    "kite": [  # darknet's kite.jpg, 1352x900: six kites in the sky, nine people on the beach and in the water
        ("kite", (593, 80, 670, 151)),
        ("kite", (280, 237, 305, 281)),
        ("kite", (302, 375, 326, 406)),  # its lower end behind the tree line
        ("kite", (468, 341, 485, 358)),
        ("kite", (578, 345, 599, 369)),
        ("kite", (1083, 393, 1100, 424)),
        ("person", (113, 612, 165, 761)),  # the two hooded walkers in front
        ("person", (216, 699, 270, 851)),
        ("person", (21, 531, 39, 557)),  # the group on the sand, left to right
        ("person", (40, 510, 53, 561)),
        ("person", (83, 508, 100, 566)),
        ("person", (94, 537, 109, 567)),  # the child half hidden by his father
        ("person", (177, 540, 191, 574)),  # the girl at the water's edge
        ("person", (521, 505, 532, 531)),  # two kite surfers in the water
        ("person", (538, 514, 554, 533)),
    ],
    "astronaut": [("person", (20, 14, 365, 512))],  # the helmet she holds is not part of the box
    "chelsea": [("cat", (0, 0, 400, 300))],
    "coffee": [("cup", (172, 18, 410, 306)), ("spoon", (325, 66, 424, 327))],
    "motorcycle": [("motorcycle", (92, 78, 686, 453)), ("bench", (40, 104, 284, 308))],
    "camera": [("person", (0, 64, 332, 512))],  # the cameraman (grayscale)
}


def write_labelled_set(
    out_dir: Path,
    boxes: Boxes = LABELLED_SET,
    photo: Callable[[str], Path] = sample,
) -> tuple[Path, Path]:
    """Write ``boxes`` as an Ultralytics coco8-layout folder and as a COCO JSON file in ``out_dir``.

    ``out_dir/images/<photo file>`` (the photos, copied), ``out_dir/labels/<stem>.txt`` (``class cx cy w h``
    normalised), ``out_dir/data.yaml`` (``path``, ``val: images`` and ``names``, the classes present,
    sorted), and ``out_dir/instances.json`` (COCO: ``file_name`` relative to ``out_dir/images``, ``bbox``
    ``[x, y, w, h]`` pixels, ids from 1, the same categories in the same order).

    Args:
        out_dir: created if missing; files of the same names are replaced.
        boxes: photo name -> ``(class, xyxy)`` list.
        photo: photo name -> path of the photo (``fovea.convert.samples.sample``: fetched and cached).

    Returns:
        the folder's ``data.yaml`` and the COCO JSON file.

    Raises:
        ValueError: a box outside its photo or empty, or two photos with the same file name.
    """
    out_dir = Path(out_dir)
    images_dir, labels_dir = out_dir / "images", out_dir / "labels"
    images_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    names = sorted({cls for photo_boxes in boxes.values() for cls, _ in photo_boxes})
    category = {name: i for i, name in enumerate(names)}
    images: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []
    for image_id, (name, photo_boxes) in enumerate(boxes.items(), start=1):
        source = photo(name)
        target = images_dir / source.name
        if any(entry["file_name"] == source.name for entry in images):
            raise ValueError(f"two photos are called {source.name}")
        shutil.copyfile(source, target)
        with Image.open(target) as opened:
            width, height = opened.size
        lines = []
        for cls, (x1, y1, x2, y2) in photo_boxes:
            if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
                raise ValueError(f"{name}: {cls} box {(x1, y1, x2, y2)} is empty or outside {width}x{height}")
            cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
            lines.append(
                f"{category[cls]} {cx:.6f} {cy:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"
            )
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category[cls] + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
        (labels_dir / f"{target.stem}.txt").write_text("".join(f"{line}\n" for line in lines))
        images.append({"id": image_id, "file_name": source.name, "width": width, "height": height})
    data_yaml = out_dir / "data.yaml"
    yaml_names = "".join(f"  {i}: {n}\n" for i, n in enumerate(names))
    data_yaml.write_text(
        "# Fovea's labelled sample photos (fovea.convert.labelled): every image is the validation set\n"
        f"path: .\nval: images\n\nnames:\n{yaml_names}"
    )
    coco = out_dir / "instances.json"
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    coco.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories}, indent=1)
    )
    return data_yaml, coco
