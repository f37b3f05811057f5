"""Face alignment: 5 MTCNN landmarks -> a dlib-style 150x150 chip (padding 0.25) for the dlib ResNet.

dlib's ``get_face_chip`` fits a similarity transform from a fixed template to its own 5 landmarks (eye
corners and the base of the nose). MTCNN gives different points (eye centres, nose tip, mouth corners), so
:data:`MTCNN_TEMPLATE` places MTCNN's points where they land in dlib's chips: it is the mean of MTCNN's
landmarks on the six dlib 20.0.1 reference chips (``shared/fixtures/dlib-reference``), made left-right
symmetric about the axis of dlib's own template (x = (0.4901123 + 0.25) / 1.5 * 150 = 74.011).

Chips are extracted the way dlib's ``extract_image_chip`` does it: when the chip covers more than twice
its size in image pixels, the image is first reduced with dlib's ``pyramid_down<2>`` (5-tap [1 4 6 4 1]
Gaussian, every other pixel, integer results) until it does not, then sampled bilinearly; a chip pixel
whose four neighbours are not all inside the image is black; values are truncated to uint8.

Coordinates: (x, y) in pixel-index units, pixel (row r, column c) has its centre at (c, r), in both the
image and the chip. Transforms are (2,3) float64 matrices ``[A | t]`` acting on column vectors (x, y, 1).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from fovea.common.images import image_size

CHIP_SIZE = 150
CHIP_PADDING = 0.25

# MTCNN landmarks (left eye, right eye, nose, mouth left, mouth right) in a 150x150, padding 0.25 dlib
# chip. Raw means over the six reference chips (std 1.2-1.6 px for the eyes, 3-6 px for nose and mouth):
# (46.73, 44.59) (101.18, 44.77) (75.58, 76.75) (47.74, 104.09) (100.40, 103.42); symmetrised below.
MTCNN_TEMPLATE = np.array(
    [
        [46.786, 44.680],
        [101.236, 44.680],
        [74.011, 76.750],
        [47.681, 103.755],
        [100.341, 103.755],
    ],
    dtype=np.float64,
)
# RetinaFace-mobilenet0.25's landmarks (face_retinaface) the same way: its means on the same six chips (each
# chip as it is, the net on the 150x150 image), made symmetric about the same axis. Its points sit higher
# than MTCNN's (eyes 2.4 px, nose 2.2, mouth 4.4): with MTCNN's template its chips were shifted and the
# distance matrix strayed 0.082 from dlib's; with this one 0.049 (bench/face_detectors.py).
RETINAFACE_TEMPLATE = np.array(
    [
        [46.721, 42.322],
        [101.302, 42.322],
        [74.011, 74.592],
        [47.944, 99.404],
        [100.078, 99.404],
    ],
    dtype=np.float64,
)
_TEMPLATE_SIZE, _TEMPLATE_PADDING = 150, 0.25


def chip_template(
    size: int = CHIP_SIZE, padding: float = CHIP_PADDING, template: np.ndarray = MTCNN_TEMPLATE
) -> np.ndarray:
    """``template`` (5,2) (the detector's, stored for 150/0.25) for a size x size chip with dlib padding
    ``padding``.

    dlib places a normalised face point q (in [0,1]) at ``(q + padding) / (1 + 2 padding) * size``; the
    stored 150/0.25 template is mapped back to q and forward again.
    """
    if size <= 0 or padding < 0:
        raise ValueError(f"size must be > 0 and padding >= 0, got {size}, {padding}")
    q = np.asarray(template, np.float64) / _TEMPLATE_SIZE * (1 + 2 * _TEMPLATE_PADDING) - _TEMPLATE_PADDING
    return (q + padding) / (1 + 2 * padding) * size


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping src to dst.

    src, dst: (N,2) with N >= 2 (Umeyama 1991). Returns (2,3) float64 M with dst ~ M[:, :2] @ p + M[:, 2].
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or src.shape[0] < 2:
        raise ValueError(f"expected two (N,2) point sets with N >= 2, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s == 0:
        raise ValueError("source points are all equal")
    cov = d.T @ s / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(sigma) @ sign)) / var_s
    out = np.empty((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = mu_d - out[:, :2] @ mu_s
    return out


def chip_transforms(
    landmarks: np.ndarray,
    size: int = CHIP_SIZE,
    padding: float = CHIP_PADDING,
    template: np.ndarray = MTCNN_TEMPLATE,
) -> np.ndarray:
    """landmarks (F,5,2) MTCNN points in image pixels -> (F,2,3) transforms from chip to image pixels.

    Like dlib's ``get_face_chip_details``, the fit goes from the template to the image points.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (5, 2):
        raise ValueError(f"expected landmarks of shape (F,5,2), got {landmarks.shape}")
    points = chip_template(size, padding, template)
    if len(landmarks) == 0:
        return np.empty((0, 2, 3))
    return np.stack([similarity_transform(points, pts) for pts in landmarks])


def pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib ``pyramid_down<2>``: (H,W,C) integer-valued 0..255 -> ((H-3)//2,(W-3)//2,C) float32.

    Output pixel (r, c) is the [1 4 6 4 1]^2 / 256 weighted sum centred on input pixel (2r+2, 2c+2),
    floored as dlib's integer division does. Separable, in integers: the result is exact. H and W must be
    > 8.
    """
    if image.ndim != 3 or image.shape[0] <= 8 or image.shape[1] <= 8:
        raise ValueError(f"expected an (H,W,C) image larger than 8x8, got {image.shape}")
    return _pyramid_down_planes(np.asarray(image).transpose(2, 0, 1)).transpose(1, 2, 0)


def _pyramid_down_planes(planes: np.ndarray) -> np.ndarray:
    """:func:`pyramid_down` on (C,H,W) planes -> (C,(H-3)//2,(W-3)//2) float32 planes. Planes, not pixels:
    every step runs along a row of the image instead of a pixel's three channels. In uint16: a row pass
    sums to at most 16 * 255 and a column pass to 16 * 16 * 255 = 65,280, so nothing overflows, and the
    division by 256 is a shift (half the memory traffic of float32, the same integers)."""
    x = np.ascontiguousarray(planes, np.uint16)
    rows, cols = (x.shape[1] - 3) // 2, (x.shape[2] - 3) // 2

    def taps(a: np.ndarray, axis: int, n: int) -> np.ndarray:  # [1 4 6 4 1] at every other place
        def at(i: int) -> np.ndarray:
            index = [slice(None)] * 3
            index[axis] = slice(i, i + 2 * n - 1, 2)
            return a[tuple(index)]

        total = at(0) + at(4)
        total += 4 * (at(1) + at(3))
        total += 6 * at(2)
        return total

    return (taps(taps(x, 1, rows), 2, cols) >> 8).astype(np.float32)


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dlib ``interpolate_bilinear``: image (H,W,C), points x, y (P,) float64 -> (P,C) float64; 0 when any
    of the four neighbours is outside the image."""
    return _bilinear_planes(np.asarray(image).transpose(2, 0, 1), x, y).T


def _bilinear_planes(planes: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`_bilinear` on (C,H,W) planes -> (C,P) float64, the same arithmetic in dlib's order (so the
    same values to the last bit), each neighbour gathered from the flat planes."""
    height, width = planes.shape[1:]
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    xi, yi = x0.astype(np.int64), y0.astype(np.int64)
    valid = (xi >= 0) & (yi >= 0) & (xi + 1 < width) & (yi + 1 < height)
    at = np.clip(yi, 0, height - 2) * width + np.clip(xi, 0, width - 2)
    flat = np.ascontiguousarray(planes).reshape(planes.shape[0], -1)

    def near(offset: int) -> np.ndarray:
        return np.take(flat, at + offset, axis=1).astype(np.float64)

    tl, tr, bl, br = near(0), near(1), near(width), near(width + 1)
    out = (1 - fy) * ((1 - fx) * tl + fx * tr) + fy * ((1 - fx) * bl + fx * br)
    return out * valid


def extract_chips(
    image: np.ndarray | Image.Image, transforms: np.ndarray, size: int = CHIP_SIZE
) -> np.ndarray:
    """Sample size x size chips from an (H,W,3) uint8 RGB image, or a Pillow RGB image (only the part each
    chip covers is made an array: the same chips, without a copy of every pixel).

    transforms: (F,2,3) chip -> image pixel maps (e.g. from :func:`chip_transforms`).
    Returns (F,size,size,3) uint8 RGB chips.
    """
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            raise ValueError(f"expected an RGB image, got mode {image.mode}")
    elif image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H,W,3) uint8 image, got {image.dtype} {image.shape}")
    transforms = np.asarray(transforms, dtype=np.float64)
    if transforms.ndim != 3 or transforms.shape[1:] != (2, 3):
        raise ValueError(f"expected transforms of shape (F,2,3), got {transforms.shape}")
    if size <= 0:
        raise ValueError(f"size must be > 0, got {size}")
    out = np.zeros((len(transforms), size, size, 3), dtype=np.uint8)
    width, height = image_size(image)
    if len(transforms) == 0 or height < 2 or width < 2:
        return out
    gy, gx = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")
    chip_pts = np.stack([gx.reshape(-1), gy.reshape(-1), np.ones(size * size)])
    corners = np.array(
        [[0, size - 1, 0, size - 1], [0, 0, size - 1, size - 1], [1, 1, 1, 1]], dtype=np.float64
    )
    for f, m in enumerate(transforms):
        scale = math.hypot(m[0, 0], m[1, 0])  # image pixels per chip pixel
        levels = 0
        side = size * scale  # dlib: halve while the halved chip rectangle is still larger than the chip
        while side / 2 > size:
            side /= 2
            levels += 1
        # Work on the part of the image the chip covers, with room for the pyramid filters.
        foot = m @ corners
        margin = 4 * 2**levels + 2
        x_lo = max(int(math.floor(foot[0].min())) - margin, 0)
        y_lo = max(int(math.floor(foot[1].min())) - margin, 0)
        x_hi = min(int(math.ceil(foot[0].max())) + margin + 1, width)
        y_hi = min(int(math.ceil(foot[1].max())) + margin + 1, height)
        if x_hi - x_lo < 2 or y_hi - y_lo < 2:
            continue  # the chip lies outside the image: black
        if isinstance(image, Image.Image):
            cut = np.asarray(image.crop((x_lo, y_lo, x_hi, y_hi)), np.uint8)
        else:
            cut = image[y_lo:y_hi, x_lo:x_hi]
        region = cut.transpose(2, 0, 1)  # (3, h, w) planes
        # image point p -> region point (p - origin) -> after each pyramid level (q - 2) / 2
        lin, off = m[:, :2].copy(), m[:, 2] - np.array([x_lo, y_lo], dtype=np.float64)
        for _ in range(levels):
            if region.shape[1] <= 8 or region.shape[2] <= 8:
                break
            region = _pyramid_down_planes(region)
            lin, off = lin / 2, off / 2 - 1
        pts = np.concatenate([lin, off[:, None]], axis=1) @ chip_pts
        values = _bilinear_planes(region, pts[0], pts[1])
        out[f] = np.floor(np.clip(values, 0, 255)).astype(np.uint8).T.reshape(size, size, 3)
    return out


def align_faces(
    image: np.ndarray | Image.Image,
    landmarks: np.ndarray,
    size: int = CHIP_SIZE,
    padding: float = CHIP_PADDING,
    template: np.ndarray = MTCNN_TEMPLATE,
) -> np.ndarray:
    """(H,W,3) uint8 RGB image (or a Pillow RGB image) + (F,5,2) landmarks of the detector whose
    ``template`` is given -> (F,size,size,3) uint8 dlib-style chips."""
    return extract_chips(image, chip_transforms(landmarks, size, padding, template), size)


__all__ = [
    "CHIP_PADDING",
    "CHIP_SIZE",
    "MTCNN_TEMPLATE",
    "RETINAFACE_TEMPLATE",
    "align_faces",
    "chip_template",
    "chip_transforms",
    "extract_chips",
    "pyramid_down",
    "similarity_transform",
]
