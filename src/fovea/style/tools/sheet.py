"""``fovea style sheet``: one content image in every feed-forward style, through the gateway, laid out as a
labelled contact sheet (:func:`fovea.style.core.sheet.contact_sheet`). An offline tool kept beside the
service: it runs in the CLI's process and calls the gateway through the client."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from fovea.client import FoveaClient
from fovea.style.core.sheet import contact_sheet


def style_sheet(
    client: FoveaClient,
    content: bytes,
    *,
    max_side: int = 256,
    columns: int = 6,
    preserve_color: bool = False,
    timeout_s: float = 600.0,
) -> tuple[Image.Image, int]:
    """Submit ``content`` once per style of the catalog (results at most ``max_side`` on their longest
    side), wait for every job, and return the sheet (the content first, then each style labelled with its
    name and aliases, ``columns`` to a row) and how many styles it shows.

    Raises:
        RuntimeError: a job did not succeed (naming the style, the state and the error).
        FoveaClientError: the gateway refused a call.
    """
    styles = client.style_catalog()
    jobs = [
        (s, client.submit_style(content, style=s.name, max_side=max_side, preserve_color=preserve_color))
        for s in styles
    ]
    tiles: list[tuple[str, np.ndarray]] = []
    for s, job in jobs:
        final = job
        for update in client.watch_job(job.job_id, timeout_s=timeout_s):
            final = update
        if final.state != "SUCCEEDED" or final.result_png is None:
            raise RuntimeError(f"style {s.name}: job {final.state}: {final.error}")
        image = Image.open(io.BytesIO(final.result_png)).convert("RGB")
        label = f"{s.name} ({','.join(s.aliases)})" if s.aliases else s.name
        tiles.append((label, np.asarray(image)))
    original = Image.open(io.BytesIO(content)).convert("RGB")
    original.thumbnail((max_side, max_side))
    sheet = contact_sheet([("content", np.asarray(original)), *tiles], columns=columns, tile_side=max_side)
    return sheet, len(tiles)
