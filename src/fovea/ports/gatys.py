"""Neural style transfer by optimisation (Gatys, Ecker & Bethge, 2015), in the course's notation.

Given a content image C, a style image S and a pre-trained ConvNet (our VGG16 port,
``fovea.ports.vgg16_hed``), find the generated image G that minimises

    J(G) = alpha * J_content(C, G) + beta * J_style(S, G)

by gradient descent on the pixels of G.

- Content cost, at one hidden layer l (default ``relu4_2``, as in the paper):
  ``J_content(C, G) = 1/2 * sum (a[l](C) - a[l](G))^2``, summed over all n_H * n_W * n_C activations.
- Gram ("style") matrix of layer l: ``G[l]_kk' = sum_ij a[l]_ijk a[l]_ijk'`` (paper: G = F F^T, F the
  N_l x M_l matrix of N_l = n_C channels by M_l = n_H * n_W positions).
- Style cost of layer l, paper eq. 4 / course:
  ``E_l = J_style[l](S, G) = 1 / (4 N_l^2 M_l^2) * sum_kk' (G[l](S) - G[l](G))^2``
  ``= 1 / (2 n_H n_W n_C)^2 * ||G[l](S) - G[l](G)||_F^2``.
- ``J_style(S, G) = sum_l lambda[l] * E_l`` (paper: w_l = 1/5 on relu1_1 ... relu5_1).

Normalisation as implemented: :func:`gram_matrix` returns ``F F^T / M_l`` (the Gram matrix divided by the
number of positions), and :func:`style_layer_cost` is ``1 / (4 N_l^2) * sum (G_S - G_G)^2``. When S and G
have the same size this is exactly the paper's E_l (the M_l^2 moved into the Gram matrices); when the
style image has a different size it still compares like with like, where the unnormalised paper formula
would not.

Everything here is pure torch, no I/O. The VGG works on BGR minus the HED mean (see
``fovea.ports.vgg16_hed``); G's pixels are optimised in that space and kept to the values of RGB 0-255:
Adam clamps G after every step (projected gradient descent); L-BFGS evaluates J on clamp(G) (see
:func:`run_gatys`). Previews, the result and the reported costs are always those of the clamped image.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fovea.contracts.styles import VGG16_LAYERS, GatysParams, check_image_array, fitted_size
from fovea.ports.vgg16_hed import rgb_to_vgg_input, vgg_input_bounds, vgg_input_to_rgb

logger = logging.getLogger(__name__)


ProgressCallback = Callable[[int, float, float, float, "np.ndarray | None"], bool]
"""``on_progress(iteration, j_content, j_style, j_total, preview) -> keep_going``.

``iteration`` counts from 1; the costs are those of the image that entered that iteration; ``preview`` is
an (H, W, 3) uint8 RGB image of G after the iteration, or None. Returning False cancels the run.
"""


def gram_matrix(features: Tensor) -> Tensor:
    """Gram ("style") matrix per image, divided by the number of positions.

    Args:
        features: (N, C, H, W) activations a[l] of one layer.

    Returns:
        (N, C, C): ``G_kk' = 1/M * sum_ij a_ijk a_ijk'`` with M = H * W (see the module docstring for why
        the 1/M is here rather than in the style cost).
    """
    if features.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) features, got shape {tuple(features.shape)}")
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (h * w)


def content_cost(a_c: Tensor, a_g: Tensor) -> Tensor:
    """``J_content(C, G) = 1/2 * sum (a[l](C) - a[l](G))^2``: a 0-dim tensor, summed over the batch too.

    Args:
        a_c, a_g: activations of the content layer for C and G, same shape (N, C, H, W).
    """
    if a_c.shape != a_g.shape:
        raise ValueError(f"content activations differ in shape: {tuple(a_c.shape)} vs {tuple(a_g.shape)}")
    return 0.5 * (a_c - a_g).pow(2).sum()


def style_layer_cost(gram_s: Tensor, gram_g: Tensor) -> Tensor:
    """``E_l = 1 / (4 N_l^2) * sum (G_S - G_G)^2`` for grams from :func:`gram_matrix` (0-dim tensor).

    With ``gram_matrix``'s 1/M_l this equals the paper's ``1 / (4 N_l^2 M_l^2) * sum (G - A)^2``.

    Args:
        gram_s, gram_g: (N, C, C) Gram matrices of S and G for one layer (N_l = C).
    """
    if gram_s.shape != gram_g.shape or gram_s.ndim != 3 or gram_s.shape[1] != gram_s.shape[2]:
        raise ValueError(
            f"expected two equal (N, C, C) grams, got {tuple(gram_s.shape)}, {tuple(gram_g.shape)}"
        )
    n_l = gram_s.shape[1]
    return (gram_s - gram_g).pow(2).sum() / (4 * n_l**2)


def style_cost(
    grams_s: Mapping[str, Tensor], grams_g: Mapping[str, Tensor], lambdas: Mapping[str, float]
) -> Tensor:
    """``J_style(S, G) = sum_l lambda[l] * E_l`` over the layers in ``lambdas`` (0-dim tensor).

    Args:
        grams_s, grams_g: ``{layer: (N, C, C) gram}`` of S and G, holding at least the layers of ``lambdas``.
        lambdas: ``{layer: lambda[l]}``.
    """
    missing = sorted(set(lambdas) - set(grams_s) | set(lambdas) - set(grams_g))
    if missing:
        raise ValueError(f"no gram matrix for style layers {missing}")
    if not lambdas:
        raise ValueError("lambdas is empty: J_style needs at least one layer")
    terms = [weight * style_layer_cost(grams_s[name], grams_g[name]) for name, weight in lambdas.items()]
    return torch.stack(terms).sum()


def total_cost(j_content: Tensor, j_style: Tensor, alpha: float, beta: float) -> Tensor:
    """``J(G) = alpha * J_content + beta * J_style``."""
    return alpha * j_content + beta * j_style


def run_gatys(
    vgg: nn.Module,
    content: Tensor,
    style: Tensor,
    params: GatysParams,
    on_progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Generate G: C's content in S's style, by minimising J(G) over G's pixels.

    Args:
        vgg: ``fovea.ports.vgg16_hed.VGG16HED`` (from ``load_vgg16``), or any module called as
            ``vgg(x, layers=[...]) -> {name: features}`` on BGR-minus-mean input; the run uses its device.
        content: (1, 3, H, W) RGB 0-255 float (see ``fovea.ports.gatys.array_to_tensor``).
        style: (1, 3, Hs, Ws) RGB 0-255 float; any size.
        params: see :class:`GatysParams`.
        on_progress: called after every iteration (see :data:`ProgressCallback`); returning False stops.

    Returns:
        (H', W', 3) uint8 RGB: G after the last iteration run (the last completed one when cancelled),
        at C's size fitted to ``params.max_side``.
    """
    for name, image in (("content", content), ("style", style)):
        if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
            raise ValueError(f"{name} must be a (1, 3, H, W) RGB tensor, got shape {tuple(image.shape)}")
        if min(image.shape[2:]) < 1:
            raise ValueError(f"{name} image is empty: {tuple(image.shape)}")
    device = next(vgg.parameters()).device
    content_x = rgb_to_vgg_input(fit_tensor(content.to(device, torch.float32), params.max_side))
    style_x = rgb_to_vgg_input(fit_tensor(style.to(device, torch.float32), params.max_side))
    low, high = vgg_input_bounds(torch.float32, device)
    lambdas = dict(params.style_layers)
    style_names = list(lambdas)
    all_names = sorted({params.content_layer, *style_names}, key=VGG16_LAYERS.index)

    with torch.no_grad():
        a_c = vgg(content_x, layers=[params.content_layer])[params.content_layer]
        style_features = vgg(style_x, layers=style_names)
        grams_s = {name: gram_matrix(style_features[name]) for name in style_names}
        del style_features

    if params.init == "content":
        start = content_x.clone(memory_format=torch.contiguous_format)
    else:
        generator = torch.Generator(device="cpu").manual_seed(params.seed)
        noise = torch.rand(content_x.shape, generator=generator) * 255.0
        start = rgb_to_vgg_input(noise.to(device)).contiguous()
    g = start.requires_grad_(True)

    optimizer: torch.optim.Optimizer
    project = params.optimizer == "adam"
    if params.optimizer == "lbfgs":
        # One L-BFGS iteration per step, so progress and cancel are per iteration (the curvature history
        # stays in the optimiser's state across steps). Without a line search the first quasi-Newton steps
        # overshoot by orders of magnitude at small sizes. The box constraint is inside J instead: J is
        # evaluated on clamp(G), so the function the line search sees is consistent and a step costs
        # about one forward/backward pass (clamping G in place between steps cost ~2.5).
        optimizer = torch.optim.LBFGS(
            [g], lr=params.step_size, max_iter=1, max_eval=20, history_size=100, line_search_fn="strong_wolfe"
        )
    else:
        # Adam: projected gradient descent, G is clamped in place after every step
        optimizer = torch.optim.Adam([g], lr=params.step_size)

    # The last evaluation, reused when a step starts where the previous one's line search ended (L-BFGS
    # evaluates J again at the start of every step).
    last: dict[str, Tensor] = {}
    costs: list[tuple[float, float, float]] = []  # (J_content, J_style, J) per evaluation of this step

    def closure() -> Tensor:
        if last and torch.equal(last["x"], g.detach()):
            g.grad = last["grad"].clone()
            costs.append((last["j_content"].item(), last["j_style"].item(), last["j_total"].item()))
            return last["j_total"]
        optimizer.zero_grad()
        features = vgg(g.clamp(low, high), layers=all_names)
        j_content = content_cost(a_c, features[params.content_layer])
        grams_g = {name: gram_matrix(features[name]) for name in style_names}
        j_style = style_cost(grams_s, grams_g, lambdas)
        j_total = total_cost(j_content, j_style, params.alpha, params.beta)
        j_total.backward()
        assert g.grad is not None  # set by backward(); for mypy
        last.update(
            x=g.detach().clone(),
            grad=g.grad.detach().clone(),
            j_content=j_content.detach(),
            j_style=j_style.detach(),
            j_total=j_total.detach(),
        )
        costs.append((j_content.item(), j_style.item(), j_total.item()))
        return j_total

    started = time.perf_counter()
    iteration = 0
    for iteration in range(1, params.iterations + 1):
        costs.clear()
        optimizer.step(closure)
        if project:
            with torch.no_grad():
                g.clamp_(low, high)
        j_content, j_style, j_total = costs[0]  # J of the image that entered this iteration
        if not np.isfinite(j_total):
            raise FloatingPointError(f"J(G) became {j_total} at iteration {iteration}")
        if on_progress is not None:
            preview = None
            if params.preview_every and iteration % params.preview_every == 0:
                preview = _to_image(g, low, high)
            if not on_progress(iteration, j_content, j_style, j_total, preview):
                logger.info("gatys cancelled by the caller after iteration %s", iteration)
                break
    elapsed = time.perf_counter() - started
    logger.info(
        "gatys: %s iterations (%s) at %sx%s in %.2fs", iteration, params.optimizer, *g.shape[2:], elapsed
    )
    return _to_image(g, low, high)


def _to_image(g: Tensor, low: Tensor, high: Tensor) -> np.ndarray:
    with torch.no_grad():
        return tensor_to_array(vgg_input_to_rgb(g.detach().clamp(low, high)))


def fit_tensor(images: Tensor, max_side: int, upscale: bool = False) -> Tensor:
    """Resize (N, C, H, W) float images so the longest side is ``max_side`` (bilinear, antialiased).

    Returns the input itself when no resize is needed.
    """
    if images.ndim != 4:
        raise ValueError(f"expected a (N, C, H, W) tensor, got shape {tuple(images.shape)}")
    height, width = int(images.shape[2]), int(images.shape[3])
    size = fitted_size(height, width, max_side, upscale)
    if size == (height, width):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def array_to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float32 RGB 0-255."""
    check_image_array(image)
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)  # a fresh, writable copy
    return torch.from_numpy(chw)[None].to(device)


def tensor_to_array(image: Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) float RGB 0-255 -> (H, W, 3) uint8, rounded and clamped to 0-255."""
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {image.shape[0]}")
        image = image[0]
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected a (1, 3, H, W) or (3, H, W) tensor, got shape {tuple(image.shape)}")
    out = image.detach().round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0)
    return np.ascontiguousarray(out.cpu().numpy())
