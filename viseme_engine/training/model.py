"""Streaming viseme classifier: in-graph log-mel front end + causal dilated conv stack.

Every piece is causal and carries its history in explicit state tensors, so the
exported ONNX graph gives the same frames whether it is fed a whole file or
20 ms chunks. The only lookahead is `lookahead_frames`: output frame k is the
prediction for input frame k - lookahead_frames (training shifts the labels).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

SAMPLE_RATE = 16000
HOP = 160
WIN = 400  # 25 ms analysis window ending at the end of the current 10 ms frame
N_BINS = WIN // 2 + 1
N_CLASSES = 22
LOG_FLOOR = 1e-4  # about -80 dB re a full-scale sine per mel band: below 16-bit noise


@dataclass(frozen=True)
class ModelConfig:
    n_mels: int = 64
    channels: int = 192
    kernel: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1, 2, 4, 8, 16)
    lookahead_frames: int = 4
    norm_time_constant_s: float = 1.5
    fmin: float = 40.0
    fmax: float = 7800.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> ModelConfig:
        d = dict(d)
        d["dilations"] = tuple(d["dilations"])
        return ModelConfig(**d)


def mel_filterbank(n_mels: int, fmin: float, fmax: float, warp: float = 1.0) -> np.ndarray:
    """Triangular HTK-mel filters [n_mels, N_BINS]; `warp` scales the band edges (VTLP)."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges_mel = np.linspace(hz_to_mel(np.array(fmin)), hz_to_mel(np.array(fmax)), n_mels + 2)
    edges = np.minimum(mel_to_hz(edges_mel) * warp, SAMPLE_RATE / 2)
    freqs = np.arange(N_BINS) * SAMPLE_RATE / WIN
    fb = np.zeros((n_mels, N_BINS), dtype=np.float64)
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (freqs - lo) / max(mid - lo, 1e-3)
        down = (hi - freqs) / max(hi - mid, 1e-3)
        fb[i] = np.clip(np.minimum(up, down), 0.0, None)
        # Narrow low bands can fall between DFT bins: keep at least the nearest bin.
        if fb[i].sum() == 0.0:
            fb[i, int(np.argmin(np.abs(freqs - mid)))] = 1.0
    return fb.astype(np.float32)


def dft_kernel() -> np.ndarray:
    """Hann-windowed real DFT as conv1d weights [2*N_BINS, 1, WIN] (cos rows, then sin)."""
    n = np.arange(WIN)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / WIN)
    k = np.arange(N_BINS)[:, None]
    ang = 2 * np.pi * k * n[None, :] / WIN
    w = np.concatenate([np.cos(ang) * window, -np.sin(ang) * window], axis=0)
    return w[:, None, :].astype(np.float32)


class Frontend(nn.Module):
    """Audio [B, S] -> normalised log-mel [B, T, n_mels] with T = S / HOP.

    States: `audio` holds the previous WIN - HOP samples; `norm` holds the causal
    exponential mean of the log-mel minus a fixed global mean, so a zero state
    means "start from the training-set average" instead of from log(0).
    """

    dft: Tensor
    fb: Tensor
    global_mean: Tensor

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_mels = cfg.n_mels
        self.register_buffer("dft", torch.from_numpy(dft_kernel()))
        self.register_buffer("fb", torch.from_numpy(mel_filterbank(cfg.n_mels, cfg.fmin, cfg.fmax)))
        self.register_buffer("global_mean", torch.zeros(cfg.n_mels))
        self.log_decay = -1.0 / (cfg.norm_time_constant_s * SAMPLE_RATE / HOP)

    def log_mel(
        self, audio: Tensor, audio_state: Tensor, fb: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        x = torch.cat([audio_state, audio], dim=1)
        spec = nn.functional.conv1d(x.unsqueeze(1), self.dft, stride=HOP)  # [B, 2*N_BINS, T]
        power = spec[:, :N_BINS] ** 2 + spec[:, N_BINS:] ** 2
        # A per-utterance filterbank [B, n_mels, N_BINS] is training-time VTLP.
        mel = torch.matmul(self.fb if fb is None else fb, power)
        return torch.log(mel + LOG_FLOOR).transpose(1, 2), x[:, -(WIN - HOP) :]

    def forward(
        self, audio: Tensor, audio_state: Tensor, norm_state: Tensor, fb: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        feats, audio_state = self.log_mel(audio, audio_state, fb)
        x = feats - self.global_mean
        # Exponential moving mean over the chunk in closed form, so no loop in the graph:
        # m_t = a^(t+1) m_prev + (1-a) sum_{s<=t} a^(t-s) x_s.
        t = torch.arange(x.shape[1], device=x.device, dtype=x.dtype)
        diff = t[:, None] - t[None, :]
        a = math.exp(self.log_decay)
        decay = torch.exp(diff.clamp(min=0) * self.log_decay)
        weights = torch.where(diff >= 0, (1.0 - a) * decay, 0.0)
        carry = torch.exp((t + 1.0) * self.log_decay)
        mean = carry[None, :, None] * norm_state[:, None, :] + torch.matmul(weights, x)
        return x - mean, audio_state, mean[:, -1]


class Block(nn.Module):
    """Pre-norm residual block: per-frame LayerNorm, causal dilated depthwise conv, MLP.

    The depthwise conv is written as a sum of shifted, scaled copies in [B, T, C]
    layout: torch's CPU depthwise-conv backward was the slowest op in training, and
    the graph needs no transposes.
    """

    def __init__(self, channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.kernel, self.dilation = kernel, dilation
        self.context = (kernel - 1) * dilation
        self.norm = nn.LayerNorm(channels)
        self.dw_weight = nn.Parameter(torch.randn(kernel, channels) / math.sqrt(kernel))
        self.dw_bias = nn.Parameter(torch.zeros(channels))
        self.pw = nn.Linear(channels, channels)
        self.act = nn.GELU()

    def forward(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        t = x.shape[1]
        h = torch.cat([state, self.norm(x)], dim=1)  # [B, context + T, C]
        new_state = h[:, h.shape[1] - self.context :]
        acc = self.dw_bias + h[:, self.context :] * self.dw_weight[-1]
        for j in range(self.kernel - 1):
            off = j * self.dilation
            acc = acc + h[:, off : off + t] * self.dw_weight[j]
        return x + self.pw(self.act(acc)), new_state


class VisemeNet(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.frontend = Frontend(cfg)
        self.inp = nn.Linear(cfg.n_mels, cfg.channels)
        self.blocks = nn.ModuleList(Block(cfg.channels, cfg.kernel, d) for d in cfg.dilations)
        self.out_norm = nn.LayerNorm(cfg.channels)
        self.out = nn.Linear(cfg.channels, N_CLASSES)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Trailing state dims (after batch), in the order forward() takes them."""
        shapes: dict[str, tuple[int, ...]] = {
            "audio": (WIN - HOP,),
            "norm": (self.cfg.n_mels,),
        }
        for i, blk in enumerate(self.blocks):
            assert isinstance(blk, Block)
            shapes[f"conv{i}"] = (blk.context, self.cfg.channels)
        return shapes

    def init_state(self, batch: int) -> list[Tensor]:
        return [torch.zeros(batch, *s) for s in self.state_shapes().values()]

    def forward(
        self, audio: Tensor, states: list[Tensor], fb: Tensor | None = None
    ) -> tuple[Tensor, list[Tensor]]:
        feats, audio_state, norm_state = self.frontend(audio, states[0], states[1], fb)
        logits, conv_states = self.body(feats, states[2:])
        return logits, [audio_state, norm_state, *conv_states]

    def body(self, feats: Tensor, states: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Normalised features [B, T, n_mels] -> logits; training runs it apart (bf16)."""
        x = self.inp(feats)
        new_states = []
        for blk, st in zip(self.blocks, states, strict=True):
            x, st_out = blk(x, st)
            new_states.append(st_out)
        return self.out(self.out_norm(x)), new_states


class ExportWrapper(nn.Module):
    """Flat positional signature for torch.onnx.export: audio, *states -> logits, *states."""

    def __init__(self, net: VisemeNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, audio: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
        logits, new_states = self.net(audio, list(states))
        return (logits, *new_states)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
