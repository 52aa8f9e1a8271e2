"""Group the chunks of one request into ODE batches that fit a frame budget.

All chunks of a request share the reference, so they can go through the sampler together: one
batch of B items costs about the same number of transformer calls as one item, which is where
GPU speed comes from. The budget bounds ``B x padded length`` so memory stays predictable.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChunkPlan:
    index: int
    text: str
    duration_frames: int  # reference + generated frames, as the sampler wants them
    segment: int = 0  # which voice segment of the text (planning.SegmentPlan) the chunk belongs to


def group_into_batches(
    plans: list[ChunkPlan], max_batch_frames: int, *, keep_order: bool
) -> list[list[ChunkPlan]]:
    """Split ``plans`` into batches with ``len(batch) * max(duration) <= max_batch_frames``.

    ``keep_order=False`` sorts by duration first so that similar lengths share a batch (less
    padding); streaming keeps text order so the first batch can be played while the rest run.
    A single chunk longer than the budget still gets a batch of its own.
    """
    ordered = list(plans) if keep_order else sorted(plans, key=lambda p: p.duration_frames)
    batches: list[list[ChunkPlan]] = []
    current: list[ChunkPlan] = []
    longest = 0
    for plan in ordered:
        candidate_longest = max(longest, plan.duration_frames)
        if current and candidate_longest * (len(current) + 1) > max_batch_frames:
            batches.append(current)
            current, candidate_longest = [], plan.duration_frames
        current.append(plan)
        longest = candidate_longest
    if current:
        batches.append(current)
    return batches
