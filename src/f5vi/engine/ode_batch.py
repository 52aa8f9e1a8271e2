"""Flow-matching ODEs of many chunks advanced together, one evaluation at a time.

:meth:`f5vi.engine.model.cfm.CFM.sample` integrates one batch from start to end (that is upstream's
numerics, checked against the golden data). A server wants more: chunks of *different* requests in
one batch, joining and leaving between steps. Here every chunk is an :class:`OdeItem` with its own
state, noise (from its own seed), time grid, guidance strength and step counter, and
:func:`advance` evaluates the backbone once for any set of items — each at its own flow time — and
moves each of them on by its own ``dt``.

A single item is advanced with exactly the operations ``CFM.sample`` performs (same arithmetic in
the same order, no padding mask), so it reproduces ``CFM.sample`` bit for bit; in a batch, padded
frames are masked out of attention and of the embeddings, so every item matches its solo result to
float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from f5vi.engine.model.cfm import CFM, STATE_DTYPE, OdeMethod, initial_noise, lens_to_mask, time_grid

CFG_OFF = 1e-5
"""Guidance strengths below this skip the unconditional pass (as upstream)."""


@dataclass(eq=False)
class OdeItem:
    """One chunk's ODE. ``out`` is set once it has taken all its steps."""

    cond: Tensor
    """``[duration, mel]`` what the backbone sees as conditioning: reference frames, then zeros."""
    ref: Tensor
    """``[ref_frames, mel]`` fp32 reference mel, put back over the reference frames at the end."""
    text: Tensor
    """``[nt]`` token ids (reference text + chunk text)."""
    grid: Tensor
    """``[steps + 1]`` flow times."""
    method: OdeMethod
    cfg_strength: float
    y: Tensor
    """``[duration, mel]`` fp32 ODE state (starts as the seeded noise)."""
    step: int = 0
    y_mid: Tensor | None = None
    """Midpoint method: the half-step state whose velocity is needed next."""
    out: Tensor | None = field(default=None, repr=False)

    @property
    def duration(self) -> int:
        return int(self.y.shape[0])

    @property
    def steps(self) -> int:
        return int(self.grid.shape[0]) - 1

    @property
    def done(self) -> bool:
        return self.out is not None

    def frames_for_budget(self) -> int:
        """What this item adds to a batch's size budget (its padded length)."""
        return self.duration

    def _eval_point(self) -> tuple[Tensor, Tensor]:
        t0, t1 = self.grid[self.step], self.grid[self.step + 1]
        if self.y_mid is None:
            return self.y, t0
        return self.y_mid, t0 + 0.5 * (t1 - t0)

    def _take(self, velocity: Tensor) -> None:
        t0, t1 = self.grid[self.step], self.grid[self.step + 1]
        dt = t1 - t0
        if self.method == "euler":
            self.y = self.y + dt * velocity
        elif self.y_mid is None:  # as torchdiffeq: y_mid = y + f(t0, y) * dt/2; dy = dt * f(t0 + dt/2, y_mid)
            self.y_mid = self.y + velocity * (0.5 * dt)
            return
        else:
            self.y_mid = None
            self.y = self.y + dt * velocity
        self.step += 1
        if self.step == self.steps:
            ref_frames = self.ref.shape[0]
            self.out = torch.cat((self.ref, self.y[ref_frames:]), dim=0)


def make_item(
    cfm: CFM,
    ref_mel: Tensor,
    text_ids: Tensor,
    duration: int,
    *,
    steps: int,
    cfg_strength: float,
    sway_sampling_coef: float | None,
    method: OdeMethod,
    seed: int,
    use_epss: bool = True,
    max_duration: int = 4096,
) -> OdeItem:
    """An item exactly as ``cfm.sample`` would start it for this one chunk (same bounds, same noise)."""
    if method not in ("euler", "midpoint"):
        raise ValueError(f"unknown ODE method {method!r}")
    device, dtype = cfm.device, cfm.dtype
    ref = ref_mel.to(device=device, dtype=STATE_DTYPE)
    text = text_ids.to(device=device, dtype=torch.long)
    ref_frames = int(ref.shape[0])
    # at least the text / reference length plus one frame, so something is generated
    floor = max(int((text != -1).sum()), ref_frames) + 1
    duration = min(max(int(duration), floor), max_duration)
    ref = ref[:duration]
    cond = torch.zeros(duration, ref.shape[1], device=device, dtype=STATE_DTYPE)
    cond[: ref.shape[0]] = ref
    y = initial_noise([duration], cfm.num_channels, seed, device=device, dtype=STATE_DTYPE)[0]
    grid = time_grid(steps, sway_sampling_coef=sway_sampling_coef, use_epss=use_epss, device=device)
    return OdeItem(
        cond=cond.to(dtype),
        ref=ref,
        text=text,
        grid=grid,
        method=method,
        cfg_strength=float(cfg_strength),
        y=y,
    )


@torch.inference_mode()
def advance(cfm: CFM, items: list[OdeItem]) -> None:
    """One backbone evaluation for ``items`` (each at its own flow time), then each takes its step.

    The caller decides when the set of items changes; it must call ``cfm.clear_cache()`` then, since
    the backbone caches the text embedding of the batch it last saw.
    """
    if not items:
        return
    dtype = cfm.dtype
    transformer = cfm.transformer
    points = [item._eval_point() for item in items]
    if len(items) == 1:
        x = points[0][0].unsqueeze(0)
        cond = items[0].cond.unsqueeze(0)
        text = items[0].text.unsqueeze(0)
        time = points[0][1]
        mask = None  # a single item needs no padding mask (as cfm.sample)
    else:
        durations = [item.duration for item in items]
        width = max(durations)
        x = torch.zeros(len(items), width, cfm.num_channels, device=points[0][0].device, dtype=STATE_DTYPE)
        cond = torch.zeros(len(items), width, cfm.num_channels, device=x.device, dtype=dtype)
        text = torch.full((len(items), max(int(i.text.shape[0]) for i in items)), -1, device=x.device)
        for b, (item, (state, _)) in enumerate(zip(items, points, strict=True)):
            x[b, : item.duration] = state
            cond[b, : item.duration] = item.cond
            text[b, : item.text.shape[0]] = item.text
        time = torch.stack([t for _, t in points])
        mask = lens_to_mask(torch.tensor(durations, device=x.device), width)

    guided = [item.cfg_strength >= CFG_OFF for item in items]
    x = x.to(dtype)
    if any(guided):
        packed = transformer(x=x, cond=cond, text=text, time=time, mask=mask, cfg_infer=True, cache=True).to(
            STATE_DTYPE
        )
        pred, null_pred = torch.chunk(packed, 2, dim=0)
        if len(items) == 1:
            velocity = pred + (pred - null_pred) * items[0].cfg_strength
        else:
            strength = torch.tensor(
                [item.cfg_strength if g else 0.0 for item, g in zip(items, guided, strict=True)],
                device=pred.device,
                dtype=STATE_DTYPE,
            )
            velocity = pred + (pred - null_pred) * strength[:, None, None]
    else:
        velocity = transformer(
            x=x,
            cond=cond,
            text=text,
            time=time,
            mask=mask,
            drop_audio_cond=False,
            drop_text=False,
            cache=True,
        ).to(STATE_DTYPE)
    for b, item in enumerate(items):
        item._take(velocity[b, : item.duration])
