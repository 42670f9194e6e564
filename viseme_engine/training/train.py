"""Train the streaming viseme model on a data directory (manifest.jsonl + .npz files).

    python -m viseme_engine.training.train --data data/en data/en-real --mix 0.6 0.4 \
        --out artifacts/en --minutes 65 --seed 1 --language en

Trains on split `train` of every data dir (batch items drawn from the dirs in the
`--mix` proportions), validates on their `heldout_sentences` (never
`heldout_voices` or `heldout_real`),
keeps the best checkpoint (`best.pt`, mean of clean and degraded frame accuracy)
and exports it to `<out>/model.onnx`. The LR schedule follows wall time so a run
fits its budget; pass --steps for a fixed-length run (tests, reproducing exactly).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, IterableDataset

from viseme_engine.training.augment import AugmentConfig, augment
from viseme_engine.training.export import export_onnx, load_checkpoint, load_onnx
from viseme_engine.training.model import HOP, ModelConfig, VisemeNet, mel_filterbank

log = logging.getLogger("viseme_engine.training")

Utterance = tuple[np.ndarray, np.ndarray]  # float32 audio, uint8 labels (one per 10 ms)
IGNORE = -100
UNKNOWN = 255  # a frame label with no known viseme (realspeech.py): not trained on
WARPS = np.linspace(0.86, 1.14, 29)  # VTLP factors: a cached grid of warped filterbanks


def load_split(data: Path, split: str, limit: int | None = None) -> list[Utterance]:
    """One split of a data dir, in manifest order (the first `limit` utterances)."""
    out: list[Utterance] = []
    with open(data / "manifest.jsonl") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for row in rows:
        if row["split"] != split:
            continue
        z = np.load(data / row["path"])
        labels = z["labels"].astype(np.uint8)
        audio = np.zeros(len(labels) * HOP, np.float32)
        a = z["audio"].astype(np.float32)[: len(audio)] / 32768.0
        audio[: len(a)] = a
        out.append((audio, labels))
        if limit is not None and len(out) >= limit:
            break
    return out


class Batches(IterableDataset[tuple[Tensor, Tensor, Tensor]]):
    """Endless augmented batches: audio [B, S], labels [B, T] (IGNORE-padded), warp idx [B]."""

    def __init__(
        self,
        utts: list[list[Utterance]],
        mix: list[float],
        batch: int,
        max_frames: int,
        lookahead: int,
        seed: int,
        aug: AugmentConfig | None,
    ) -> None:
        self.utts, self.batch, self.max_frames = utts, batch, max_frames
        self.mix = np.asarray(mix, np.float64) / np.sum(mix)
        self.lookahead, self.seed, self.aug = lookahead, seed, aug

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, 0 if info is None else info.id])
        while True:
            items = []
            for g in rng.choice(len(self.utts), self.batch, p=self.mix):
                audio, labels = self.utts[g][int(rng.integers(0, len(self.utts[g])))]
                if self.aug is not None:
                    audio, labels = augment(audio, labels, rng, self.aug)
                if len(labels) > self.max_frames:
                    s = int(rng.integers(0, len(labels) - self.max_frames))
                    audio = audio[s * HOP : (s + self.max_frames) * HOP]
                    labels = labels[s : s + self.max_frames]
                items.append((audio, labels))
            warp = rng.integers(0, len(WARPS), self.batch) if self.aug else np.full(self.batch, 14)
            yield (*collate(items, self.lookahead), torch.from_numpy(warp))


def collate(items: list[tuple[np.ndarray, np.ndarray]], lookahead: int) -> tuple[Tensor, Tensor]:
    # lookahead extra frames of zeros per item flush its last labels out of the causal model.
    t = max(len(lab) for _, lab in items) + lookahead
    audio = np.zeros((len(items), t * HOP), np.float32)
    labels = np.full((len(items), t), IGNORE, np.int64)
    for i, (a, lab) in enumerate(items):
        audio[i, : len(a)] = a
        labels[i, : len(lab)] = lab
    labels[labels == UNKNOWN] = IGNORE
    return torch.from_numpy(audio), torch.from_numpy(labels)


def shifted_loss(logits: Tensor, labels: Tensor, lookahead: int, smoothing: float) -> Tensor:
    """Output frame k predicts label k - lookahead."""
    t = logits.shape[1]
    pred = logits[:, lookahead:].reshape(-1, logits.shape[-1])
    tgt = labels[:, : t - lookahead].reshape(-1)
    return nn.functional.cross_entropy(pred, tgt, ignore_index=IGNORE, label_smoothing=smoothing)


@torch.no_grad()
def estimate_global_mean(net: VisemeNet, utts: list[Utterance]) -> None:
    total = torch.zeros(net.cfg.n_mels)
    frames = 0
    for audio, _ in utts[:300]:
        x = torch.from_numpy(audio / (np.sqrt(np.mean(audio**2)) + 1e-9) * 0.1)[None]
        feats, _ = net.frontend.log_mel(x, torch.zeros(1, 240), None)
        total += feats[0].sum(0)
        frames += feats.shape[1]
    net.frontend.global_mean.copy_(total / max(frames, 1))


@torch.no_grad()
def accuracy(net: VisemeNet, utts: list[Utterance], lookahead: int) -> float:
    net.eval()
    correct = total = 0
    for i in range(0, len(utts), 16):
        audio, labels = collate(list(utts[i : i + 16]), lookahead)
        logits, _ = net(audio, net.init_state(audio.shape[0]))
        pred = logits[:, lookahead:].argmax(-1)
        tgt = labels[:, : pred.shape[1]]
        mask = tgt != IGNORE
        correct += int((pred[mask] == tgt[mask]).sum())
        total += int(mask.sum())
    net.train()
    return correct / max(total, 1)


def degraded_copy(utts: list[Utterance], seed: int) -> list[Utterance]:
    rng = np.random.default_rng(seed)
    out = []
    for a, lab in utts:
        aa, ll = augment(a, lab, rng, AugmentConfig(p_speed=0.0))
        out.append((aa, ll.astype(np.uint8)))
    return out


def save(net: VisemeNet, path: Path, extra: dict[str, Any]) -> None:
    torch.save({"model": net.state_dict(), "config": json.dumps(net.cfg.to_dict()), **extra}, path)


def train(args: argparse.Namespace) -> Path:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    mix = args.mix or [1.0] * len(args.data)
    if len(mix) != len(args.data):
        raise SystemExit("--mix needs one weight per --data dir")
    groups = [load_split(d, "train", args.limit) for d in args.data]
    val = [u for d in args.data for u in load_split(d, "heldout_sentences", args.val_limit)]
    val_deg = degraded_copy(val, args.seed + 1000)
    for d, group, w in zip(args.data, groups, mix, strict=True):
        log.info("train %s: %d utts (%.2f h), mix %.2f", d, len(group),
                 sum(len(lab) for _, lab in group) / 360000, w)  # fmt: skip
    log.info("val %d utts", len(val))
    train_utts = [u for g in groups for u in g]
    if args.init is None:
        net = VisemeNet(ModelConfig(channels=args.channels))
        estimate_global_mean(net, train_utts)
    else:  # a checkpoint, or a shipped model (e.g. to add voices); its config wins
        loader_fn = load_onnx if args.init.suffix == ".onnx" else load_checkpoint
        net = loader_fn(args.init).train()
        log.info("initialised from %s", args.init)
    cfg = net.cfg
    la = cfg.lookahead_frames
    fbs = torch.from_numpy(
        np.stack([mel_filterbank(cfg.n_mels, cfg.fmin, cfg.fmax, w) for w in WARPS])
    )
    aug = AugmentConfig(p_codec=args.p_codec)
    ds = Batches(groups, mix, args.batch, args.max_frames, la, args.seed, aug)
    loader = DataLoader(ds, batch_size=None, num_workers=args.workers)
    # Compiling the body alone (features stay eager, no grad) trains ~2.5x faster on CPU.
    body = torch.compile(net.body, dynamic=True) if args.compile else net.body
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.01, fused=True)
    budget = args.minutes * 60.0
    start = last_eval = time.monotonic()
    best = -1.0
    step = 0
    net.train()
    for audio, labels, warp in loader:
        frac = step / args.steps if args.steps else (time.monotonic() - start) / budget
        if frac >= 1.0:
            break
        warm = min(1.0, (step + 1) / args.warmup)
        lr = args.lr * warm * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        for g in opt.param_groups:
            g["lr"] = lr
        states = net.init_state(audio.shape[0])
        with torch.no_grad():
            feats, _, _ = net.frontend(audio, states[0], states[1], fbs[warp])
        logits, _ = body(feats, states[2:])
        loss = shifted_loss(logits, labels, la, args.smoothing)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]  # untyped in torch 2.13's stubs
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            log.info(
                "step %d loss %.3f lr %.2e t %.1f min",
                step,
                loss.item(),
                lr,
                (time.monotonic() - start) / 60,
            )
        if time.monotonic() - last_eval > args.eval_minutes * 60:
            last_eval = time.monotonic()
            best = evaluate(net, val, val_deg, la, out, step, best)
            last_eval = time.monotonic()
    best = evaluate(net, val, val_deg, la, out, step, best)
    save(net, out / "last.pt", {"step": step})
    export_onnx(load_checkpoint(out / "best.pt"), out / "model.onnx", args.language, args.version)
    log.info(
        "done: %d steps in %.1f min, best val %.4f, exported %s",
        step,
        (time.monotonic() - start) / 60,
        best,
        out / "model.onnx",
    )
    return out / "model.onnx"


def evaluate(
    net: VisemeNet,
    val: list[Utterance],
    val_deg: list[Utterance],
    la: int,
    out: Path,
    step: int,
    best: float,
) -> float:
    clean = accuracy(net, val, la)
    deg = accuracy(net, val_deg, la)
    score = (clean + deg) / 2
    log.info("eval step %d: heldout_sentences clean %.4f degraded %.4f", step, clean, deg)
    if score > best:
        save(net, out / "best.pt", {"step": step, "clean": clean, "degraded": deg})
        log.info("new best %.4f", score)
        return score
    return best


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, nargs="+", required=True, help="data dirs")
    ap.add_argument("--mix", type=float, nargs="+", help="batch share per data dir (default equal)")
    ap.add_argument("--p-codec", type=float, default=0.12, help="Opus/MP3 round trip probability")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--language", default="en")
    ap.add_argument("--version", default="1")
    ap.add_argument("--minutes", type=float, default=65.0)
    ap.add_argument("--steps", type=int, default=0, help="fixed step count (overrides --minutes)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--init", type=Path, help="checkpoint (.pt) or model (.onnx) to fine-tune from")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--smoothing", type=float, default=0.05)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-frames", type=int, default=400)
    ap.add_argument("--channels", type=int, default=192)
    ap.add_argument("--limit", type=int, help="use at most this many train utterances")
    ap.add_argument("--val-limit", type=int, default=300)
    ap.add_argument("--eval-minutes", type=float, default=5.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-compile", dest="compile", action="store_false", help="skip torch.compile")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(message)s",
        handlers=[logging.FileHandler(args.out / "train.log"), logging.StreamHandler()],
    )
    train(args)


if __name__ == "__main__":
    main()
