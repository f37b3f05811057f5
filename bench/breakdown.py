"""Where a request's time goes, per process: CPU milliseconds each process of the stack spends per request
(from /proc, so every process counts, Triton's python-backend stubs included), Triton's own statistics per
model (queue vs compute: input, infer, output), and the wall-clock p50 seen by the client.

    .venv/bin/python bench/breakdown.py [--requests 40] [--what detect,verify] [--json OUT] [--before OLD]

It uses only the client, the stack launcher and /proc, so the same file profiles an older checkout:
``--before OLD`` first runs this file with ``OLD/.venv/bin/python`` (OLD's stack, models and code: make one
with ``git worktree add OLD <commit>``, a venv there and ``make models``), then this checkout, and prints
both side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import tritonclient.grpc as triton_grpc

sys.path.insert(0, str(Path(__file__).parent))

from _stack import children, private_stack, process_label  # noqa: E402
from _timing import sequential  # noqa: E402

from fovea.client import FoveaClient  # noqa: E402
from fovea.convert.samples import sample
from fovea.stack.config import StackSettings  # noqa: E402
from fovea.stack.control import status  # noqa: E402

DETECT_IMAGES = ("dog", "person", "horses", "kite", "giraffe")
VERIFY_PROBES = ("obama2", "obama3", "obama_partial_face", "obama_partial_face2", "biden")
TICK = os.sysconf("SC_CLK_TCK")


def processes(settings: StackSettings) -> dict[int, str]:
    """Every process of the stack (supervised programs and their descendants), labelled."""
    tree = children()
    found: dict[int, str] = {}
    for prog in status(settings):
        stack = [prog.pid]
        while stack:
            pid = stack.pop()
            found[pid] = process_label(pid, prog.name)
            stack.extend(tree.get(pid, []))
    return found


def cpu_seconds(pids: dict[int, str]) -> dict[str, float]:
    per_label: dict[str, float] = {}
    for pid, label in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        per_label[label] = per_label.get(label, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return per_label


def triton_stats(settings: StackSettings) -> dict[str, dict[str, float]]:
    """Per model: inference count, executions, and cumulative ns of queue / compute input, infer, output."""
    client = triton_grpc.InferenceServerClient(settings.triton_grpc_url)
    token_file = getattr(settings, "internal_token_file", None)  # older checkouts have none
    headers = None
    if token_file is not None and token_file.is_file():
        headers = {"triton-grpc-protocol-x-fovea-internal-token": token_file.read_text().strip()}
    stats = client.get_inference_statistics(as_json=True, headers=headers).get("model_stats", [])
    out = {}
    for model in stats:
        inf = model.get("inference_stats", {})
        out[model["name"]] = {
            "count": float(model.get("inference_count", 0)),
            "executions": float(model.get("execution_count", 0)),
            **{
                k: float(inf.get(k, {}).get("ns", 0))
                for k in ("queue", "compute_input", "compute_infer", "compute_output")
            },
        }
    client.close()
    return out


def profile(
    settings: StackSettings, name: str, call: Callable[[int], object], requests: int
) -> dict[str, object]:
    for i in range(3):
        call(i)
    pids = processes(settings)
    cpu0, tri0 = cpu_seconds(pids), triton_stats(settings)
    figures = sequential(call, requests)
    cpu1, tri1 = cpu_seconds(pids), triton_stats(settings)
    cpu = {k: (cpu1.get(k, 0.0) - cpu0.get(k, 0.0)) * 1e3 / requests for k in cpu1}
    triton = {}
    for model, after in tri1.items():
        before = tri0.get(model, {})
        n = after["count"] - before.get("count", 0.0)
        if n <= 0:
            continue
        triton[model] = {
            "inferences/request": n / requests,
            **{
                f"{k} ms": (after[k] - before.get(k, 0.0)) / n / 1e6
                for k in ("queue", "compute_input", "compute_infer", "compute_output")
            },
        }
    return {
        "what": name,
        "requests": requests,
        "p50_ms": figures["p50_ms"],
        "wall_ms_per_request": 1e3 / figures["per_s"],
        "cpu_ms_per_request": {
            k: round(v, 2) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v > 0.05
        },
        "triton": triton,
    }


def show(result: dict[str, object]) -> None:
    print(f"\n## {result['what']}: p50 {result['p50_ms']:.1f} ms ({result['requests']} sequential requests)")
    print("| process | CPU ms / request |\n|---|---|")
    cpu = result["cpu_ms_per_request"]
    assert isinstance(cpu, dict)
    for label, ms in cpu.items():
        print(f"| {label} | {ms:.1f} |")
    print(f"| all | {sum(cpu.values()):.1f} |")
    triton = result["triton"]
    assert isinstance(triton, dict)
    if triton:
        print(
            "\n| Triton model | inferences / request | queue ms | compute input ms | compute infer ms | compute output ms |"
        )
        print("|---|---|---|---|---|---|")
        for model, s in triton.items():
            print(
                f"| {model} | {s['inferences/request']:.2f} | {s['queue ms']:.2f} | {s['compute_input ms']:.2f} | "
                f"{s['compute_infer ms']:.2f} | {s['compute_output ms']:.2f} |"
            )


def side_by_side(before: list[dict[str, object]], after: list[dict[str, object]]) -> None:
    print("\n## Before vs after (same script, same machine, one run)")
    print("| request | p50 before ms | p50 after ms | after / before | CPU before ms | CPU after ms |")
    print("|---|---|---|---|---|---|")
    for old, new in zip(before, after, strict=True):
        old_cpu = sum(old["cpu_ms_per_request"].values())  # type: ignore[union-attr]
        new_cpu = sum(new["cpu_ms_per_request"].values())  # type: ignore[union-attr]
        ratio = float(new["p50_ms"]) / float(old["p50_ms"])  # type: ignore[arg-type]
        print(
            f"| {new['what']} | {old['p50_ms']:.1f} | {new['p50_ms']:.1f} | {ratio:.2f} | {old_cpu:.1f} | {new_cpu:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--what", default="detect,verify")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--before", type=Path, help="an older checkout (with its .venv and built models)")
    args = parser.parse_args()
    before: list[dict[str, object]] = []
    if args.before:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "before.json"
            subprocess.run(
                [
                    str(args.before / ".venv/bin/python"),
                    __file__,
                    "--requests",
                    str(args.requests),
                    "--what",
                    args.what,
                    "--json",
                    str(out),
                ],
                check=True,
            )
            before = json.loads(out.read_text())
    import fovea

    print(f"profiling the stack of {Path(fovea.__file__).resolve().parents[1]}")
    results = []
    with private_stack() as (settings, key):
        client = FoveaClient(f"{settings.host}:{settings.gateway_port}", key, timeout_s=120)
        todo = args.what.split(",")
        if "detect" in todo:
            images = [sample(n).read_bytes() for n in DETECT_IMAGES]
            results.append(
                profile(settings, "Detect (nanodet)", lambda i: client.detect(images[i % 5]), args.requests)
            )
        if "verify" in todo:
            gallery = f"profile-{uuid.uuid4().hex[:6]}"
            client.create_gallery(gallery)
            client.enroll(gallery, "obama", [sample("obama").read_bytes()])
            probes = [sample(n).read_bytes() for n in VERIFY_PROBES]
            results.append(
                profile(
                    settings,
                    "Verify",
                    lambda i: client.verify(gallery, "obama", probes[i % 5]),
                    args.requests,
                )
            )
            client.delete_gallery(gallery)
        client.close()
    for result in results:
        show(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if before:
        side_by_side(before, results)


if __name__ == "__main__":
    main()
