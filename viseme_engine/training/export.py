"""Export a trained checkpoint to the streaming ONNX contract documented in onnx_model.py.

    python -m viseme_engine.training.export --ckpt runs/en/best.pt \
        --out viseme_engine/models/default.onnx --language en --version 1
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import onnx
import torch

from viseme_engine.training.model import (
    HOP,
    N_CLASSES,
    SAMPLE_RATE,
    ExportWrapper,
    ModelConfig,
    VisemeNet,
)

OPSET = 17


def load_checkpoint(path: Path) -> VisemeNet:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    net = VisemeNet(ModelConfig.from_dict(json.loads(ckpt["config"])))
    net.load_state_dict(ckpt["model"])
    return net.eval()


def load_onnx(path: Path) -> VisemeNet:
    """The network of an exported model file, for fine-tuning a shipped model.

    The exporter keeps parameter names for biases and norms but folds the
    matrices (transposed) and the depthwise taps into anonymous initializers;
    those are found through the nodes that use them, by the nodes' scope names.
    """
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    net = VisemeNet(ModelConfig.from_dict(json.loads(meta["model_config"])))
    arrays = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    state = {k.removeprefix("net."): torch.from_numpy(v.copy()) for k, v in arrays.items()
             if k.startswith("net.")}  # fmt: skip
    taps: dict[str, dict[int, torch.Tensor]] = {}
    for node in model.graph.node:
        weight = next((i for i in node.input if i in arrays and not i.startswith("net.")), None)
        if weight is None:
            continue
        scope, _, op = node.name.removeprefix("/net/").rpartition("/")
        tensor = torch.from_numpy(arrays[weight].copy())
        if op == "MatMul":  # Linear: x @ W.T is stored as W.T
            state[f"{scope.replace('/', '.')}.weight"] = tensor.T.contiguous()
        elif op.startswith("Mul"):  # taps in forward() order: last, then 0, 1, ...
            taps.setdefault(scope, {})[int(op.partition("_")[2] or -1)] = tensor
    kernel = net.cfg.kernel
    for scope, by_order in taps.items():
        ordered = [by_order[k] for k in sorted(by_order)]
        state[f"{scope}.dw_weight"] = torch.stack([*ordered[1:kernel], ordered[0]])
    net.load_state_dict(state)
    return net.eval()


def export_onnx(net: VisemeNet, out: Path, language: str, version: str) -> None:
    net = net.eval()
    shapes = net.state_shapes()
    state_names = [f"state_{n}" for n in shapes]
    batch = 2
    audio = torch.zeros(batch, HOP * 7)
    states = tuple(torch.zeros(batch, *s) for s in shapes.values())
    dynamic_axes: dict[str, dict[int, str]] = {
        "audio": {0: "batch", 1: "samples"},
        "logits": {0: "batch", 1: "frames"},
    }
    for n in state_names:
        dynamic_axes[n] = {0: "batch"}
        dynamic_axes[f"{n}_out"] = {0: "batch"}
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated but handles the data-dependent
        # arange of the in-graph running mean without symbolic-shape guards.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            ExportWrapper(net),
            (audio, *states),
            str(out),
            input_names=["audio", *state_names],
            output_names=["logits", *[f"{n}_out" for n in state_names]],
            dynamic_axes=dynamic_axes,
            opset_version=OPSET,
            dynamo=False,
        )
    model = onnx.load(str(out))
    meta = {
        "sample_rate": str(SAMPLE_RATE),
        "hop": str(HOP),
        "lookahead_frames": str(net.cfg.lookahead_frames),
        "n_classes": str(N_CLASSES),
        "language": language,
        "version": version,
        "state_specs": json.dumps({f"state_{n}": list(s) for n, s in shapes.items()}),
        "model_config": json.dumps(net.cfg.to_dict()),
    }
    del model.metadata_props[:]
    for k, v in meta.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = k, v
    model.producer_name = "viseme-gateway"
    onnx.checker.check_model(model)
    onnx.save(model, str(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--language", required=True)
    ap.add_argument("--version", default="1")
    args = ap.parse_args()
    export_onnx(load_checkpoint(args.ckpt), args.out, args.language, args.version)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
