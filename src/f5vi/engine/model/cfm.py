"""Conditional flow matching sampler (upstream ``CFM.sample``), inference only.

The ODE is integrated on a fixed grid with the same arithmetic as ``torchdiffeq.odeint`` for ``euler`` and
``midpoint`` (no step-size control, no interpolation: the grid points are the requested times), so results
match upstream to float rounding without depending on torchdiffeq.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from f5vi.engine.model.backbone import FlowBackbone

OdeMethod = Literal["euler", "midpoint"]
StepCallback = Callable[[int, int], None]
"""``on_step(completed_steps, total_steps)``; may raise to abort sampling (the exception propagates)."""

# Empirically pruned step schedules (upstream ``get_epss_timesteps``), as multiples of 1/32.
_EPSS_GRIDS: dict[int, tuple[int, ...]] = {
    5: (0, 2, 4, 8, 16, 32),
    6: (0, 2, 4, 6, 8, 16, 32),
    7: (0, 2, 4, 6, 8, 16, 24, 32),
    10: (0, 2, 4, 6, 8, 12, 16, 20, 24, 28, 32),
    12: (0, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32),
    16: (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32),
}

MAX_SEED = 2**31 - 1

STATE_DTYPE = torch.float32
"""dtype of the ODE state, the time grid, the noise and the guidance arithmetic, whatever the model runs in.

Upstream integrates in the model dtype. In half precision each Euler increment ``dt * v`` (dt down to 1/32) is
rounded into a state with 8 (bf16) or 11 (fp16) mantissa bits, so a few ulps are lost at every step; keeping
the state in fp32 costs nothing measurable (one cast of a [b, n, 100] tensor per step) and leaves the
backbone as the only half-precision part. In fp32 nothing changes.
"""


def time_grid(
    steps: int,
    *,
    sway_sampling_coef: float | None = -1.0,
    use_epss: bool = True,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """The ``steps + 1`` flow times from 0 to 1 that upstream integrates over.

    ``use_epss`` replaces the uniform grid by the pruned one for 5, 6, 7, 10, 12 and 16 steps; then sway
    sampling ``t + s * (cos(pi/2 t) - 1 + t)`` is applied when ``sway_sampling_coef`` is not None.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    grid = _EPSS_GRIDS.get(steps) if use_epss else None
    if grid is None:
        t = torch.linspace(0, 1, steps + 1, device=device, dtype=dtype)
    else:
        t = (1 / 32) * torch.tensor(grid, device=device, dtype=dtype)
    if sway_sampling_coef is not None:
        t = t + sway_sampling_coef * (torch.cos(torch.pi / 2 * t) - 1 + t)
    return t


def lens_to_mask(lens: Tensor, length: int | None = None) -> Tensor:
    """``[b, length]`` boolean mask, True for the first ``lens[i]`` positions of row ``i``."""
    if length is None:
        length = int(lens.amax())
    seq = torch.arange(length, device=lens.device)
    return seq[None, :] < lens[:, None]


def initial_noise(
    durations: list[int], num_channels: int, seed: int, *, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """Upstream's y0: per item the RNG is re-seeded with ``seed`` and ``randn(duration_i, C)`` drawn, then the
    items are right-padded with zeros. A private generator on ``device`` gives the same numbers as
    ``torch.manual_seed`` without touching the global RNG state."""
    max_dur = max(durations)
    y0 = torch.zeros(len(durations), max_dur, num_channels, device=device, dtype=dtype)
    for i, dur in enumerate(durations):
        gen = torch.Generator(device=device)
        gen.manual_seed(seed)
        y0[i, :dur] = torch.randn(dur, num_channels, generator=gen, device=device, dtype=dtype)
    return y0


@dataclass
class SampleOutput:
    out: Tensor
    """``[b, max_duration, mel]``: final ODE state with the reference frames replaced by ``cond``."""
    duration: Tensor
    """``[b]`` total frames per item actually generated (after upstream's lower/upper bounds)."""
    seed: int | None
    """The seed the noise was drawn with (drawn here when not given); None when ``noise`` was passed."""
    trajectory: Tensor | None = None
    """``[steps + 1, b, max_duration, mel]`` ODE states including y0, when requested."""

    def __iter__(self) -> Iterator[Tensor | None]:
        """Unpack as upstream's return value: ``out, trajectory = cfm.sample(...)``."""
        return iter((self.out, self.trajectory))


class CFM(nn.Module):
    """Wraps a backbone (``transformer``) and samples mels with classifier-free guided flow matching."""

    def __init__(self, transformer: FlowBackbone, num_channels: int = 100) -> None:
        super().__init__()
        self.transformer = transformer
        self.num_channels = num_channels

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def clear_cache(self) -> None:
        self.transformer.clear_cache()

    @torch.inference_mode()
    def sample(
        self,
        cond: Tensor,
        text: Tensor,
        duration: Tensor | int,
        *,
        lens: Tensor | None = None,
        steps: int = 32,
        cfg_strength: float = 2.0,
        sway_sampling_coef: float | None = -1.0,
        method: OdeMethod = "euler",
        use_epss: bool = True,
        seed: int | None = None,
        noise: Tensor | None = None,
        max_duration: int = 4096,
        return_trajectory: bool = False,
        on_step: StepCallback | None = None,
    ) -> SampleOutput:
        """Generate mel frames continuing ``cond`` for ``text``.

        Args:
            cond: reference log-mel ``[b, n_ref, mel]``.
            text: token ids ``[b, nt]`` (reference text + text to say), padded with -1.
            duration: total frames per item (reference + generated), ``[b]`` or an int for all.
            lens: valid reference frames per item (default ``n_ref``).
            steps: ODE steps (the transformer runs once per euler step, twice per midpoint step).
            cfg_strength: classifier-free guidance weight; < 1e-5 disables the unconditional pass.
            sway_sampling_coef: sway sampling of the time grid (None: off).
            method: ``"euler"`` or ``"midpoint"``.
            use_epss: use upstream's pruned grid for 5, 6, 7, 10, 12 and 16 steps.
            seed: noise seed; None draws a fresh one (reported in the result). Ignored with ``noise``.
            noise: explicit initial state ``[b, max(duration), mel]``.
            max_duration: upper bound on any item's duration.
            return_trajectory: also return every ODE state.
            on_step: called as ``on_step(k, steps)`` after step ``k`` (1-based) completes; an exception
                raised there stops sampling and propagates to the caller.
        """
        if method not in ("euler", "midpoint"):
            raise ValueError(f"unknown ODE method {method!r}")
        if steps < 1:
            raise ValueError("steps must be >= 1")
        if cond.ndim != 3 or cond.shape[-1] != self.num_channels:
            raise ValueError(f"cond must be [batch, frames, {self.num_channels}], got {tuple(cond.shape)}")

        device, dtype = self.device, self.dtype
        cond = cond.to(device=device, dtype=STATE_DTYPE)
        batch, cond_seq_len = cond.shape[:2]
        text = text.to(device=device, dtype=torch.long)
        if text.ndim != 2 or text.shape[0] != batch:
            raise ValueError(f"text must be [{batch}, nt], got {tuple(text.shape)}")
        if lens is None:
            lens = torch.full((batch,), cond_seq_len, device=device, dtype=torch.long)
        else:
            lens = lens.to(device=device, dtype=torch.long)
        if isinstance(duration, int):
            duration = torch.full((batch,), duration, device=device, dtype=torch.long)
        else:
            duration = duration.to(device=device, dtype=torch.long)

        # at least the text / reference length plus one frame, so something is generated
        duration = torch.maximum(torch.maximum((text != -1).sum(dim=-1), lens) + 1, duration)
        duration = duration.clamp(max=max_duration)
        max_dur = int(duration.amax())

        cond_mask = lens_to_mask(lens)
        cond = F.pad(cond, (0, 0, 0, max_dur - cond_seq_len), value=0.0)
        cond_mask = F.pad(cond_mask, (0, max_dur - cond_mask.shape[-1]), value=False).unsqueeze(-1)
        step_cond = torch.where(cond_mask, cond, torch.zeros_like(cond)).to(dtype)
        # a single item needs no padding mask (upstream skips it to save memory)
        mask = lens_to_mask(duration) if batch > 1 else None

        if noise is not None:
            expected = (batch, max_dur, self.num_channels)
            if tuple(noise.shape) != expected:
                raise ValueError(f"noise must have shape {expected}, got {tuple(noise.shape)}")
            y0 = noise.to(device=device, dtype=STATE_DTYPE)
            used_seed = None
        else:
            used_seed = secrets.randbelow(MAX_SEED + 1) if seed is None else int(seed)
            y0 = initial_noise(
                [int(d) for d in duration.tolist()],
                self.num_channels,
                used_seed,
                device=device,
                dtype=STATE_DTYPE,
            )

        transformer = self.transformer

        def velocity(t: Tensor, x: Tensor) -> Tensor:
            # the backbone runs in the model dtype; the guidance arithmetic and the state stay in fp32
            x = x.to(dtype)
            if cfg_strength < 1e-5:
                return transformer(
                    x=x, cond=step_cond, text=text, time=t, mask=mask,
                    drop_audio_cond=False, drop_text=False, cache=True,
                ).to(STATE_DTYPE)  # fmt: skip
            packed = transformer(
                x=x, cond=step_cond, text=text, time=t, mask=mask, cfg_infer=True, cache=True
            ).to(STATE_DTYPE)
            pred, null_pred = torch.chunk(packed, 2, dim=0)
            return pred + (pred - null_pred) * cfg_strength

        t = time_grid(
            steps, sway_sampling_coef=sway_sampling_coef, use_epss=use_epss, device=device, dtype=STATE_DTYPE
        )
        trajectory = None
        if return_trajectory:
            trajectory = torch.empty(steps + 1, *y0.shape, device=device, dtype=STATE_DTYPE)
            trajectory[0] = y0

        self.clear_cache()
        try:
            y = y0
            for k in range(steps):
                t0, t1 = t[k], t[k + 1]
                dt = t1 - t0
                if method == "euler":
                    dy = dt * velocity(t0, y)
                else:  # midpoint, as torchdiffeq: y_mid = y + f(t0, y) * dt/2; dy = dt * f(t0 + dt/2, y_mid)
                    half_dt = 0.5 * dt
                    y_mid = y + velocity(t0, y) * half_dt
                    dy = dt * velocity(t0 + half_dt, y_mid)
                    del y_mid
                y = y + dy
                del dy
                if trajectory is not None:
                    trajectory[k + 1] = y
                if on_step is not None:
                    on_step(k + 1, steps)
        finally:
            self.clear_cache()

        out = torch.where(cond_mask, cond, y)
        return SampleOutput(out=out, duration=duration, seed=used_seed, trajectory=trajectory)
