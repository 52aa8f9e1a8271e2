"""Load the synthesis engine once per process, with the demo model as an explicit fallback."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from f5vi.config import Settings

if TYPE_CHECKING:
    from f5vi.engine.planning import TextPlanner
    from f5vi.engine.synthesizer import Synthesizer

logger = logging.getLogger(__name__)

DEMO_BANNER = (
    "DEMO MODEL LOADED (%s): random weights, the audio is NOISE, not speech. "
    "Set F5VI_MODEL to a real checkpoint for speech."
)
DEMO_OUTPUT_WARNING = (
    "DEMO model: random weights, this audio is noise, not speech; set F5VI_MODEL to a real checkpoint"
)


def demo_settings(settings: Settings) -> Settings:
    """``settings`` pointed at the demo model directory (model and its bundled vocoder)."""
    from f5vi.engine.demo import demo_vocoder_dir

    demo_dir = settings.demo_model_path
    return settings.model_copy(update={"model": str(demo_dir), "vocoder": str(demo_vocoder_dir(demo_dir))})


def ensure_demo_model(settings: Settings) -> None:
    from f5vi.engine.demo import DEMO_MARKER, make_demo_model

    demo_dir = settings.demo_model_path
    if not (demo_dir / DEMO_MARKER).is_file():
        logger.warning("creating the demo model in %s", demo_dir)
        make_demo_model(demo_dir)


def load_synthesizer(settings: Settings, *, demo_fallback: bool = False) -> Synthesizer:
    """Blocking: load the configured model; if that fails and ``demo_fallback``, the demo model."""
    from f5vi.engine.synthesizer import Synthesizer

    try:
        synth = Synthesizer.from_settings(settings)
    except Exception as exc:
        if not demo_fallback:
            raise
        logger.error(
            "could not load the configured model %r (%s: %s); falling back to the DEMO model",
            settings.model,
            type(exc).__name__,
            exc,
        )
        ensure_demo_model(settings)
        synth = Synthesizer.from_settings(demo_settings(settings))
    if synth.info.is_demo:
        logger.warning(DEMO_BANNER, synth.info.model)
    else:
        logger.info("model loaded: %s (%s) on %s", synth.info.model, synth.info.arch, synth.info.device)
    return synth


def load_planner(settings: Settings, *, demo_fallback: bool = False) -> tuple[TextPlanner, Settings]:
    """The text planner of the configured model (its vocab alone, no weights); if that vocab cannot be
    had and ``demo_fallback``, the demo model's, with the same loud warning as the engine. Returns the
    planner and the settings it was built from."""
    from f5vi.engine.planning import TextPlanner

    try:
        return TextPlanner.from_settings(settings), settings
    except Exception as exc:
        if not demo_fallback:
            raise
        logger.error(
            "could not load the vocab of the configured model %r (%s: %s); falling back to the DEMO model",
            settings.model,
            type(exc).__name__,
            exc,
        )
        ensure_demo_model(settings)
        demo = demo_settings(settings)
        logger.warning(DEMO_BANNER, demo.model)
        return TextPlanner.from_settings(demo), demo
