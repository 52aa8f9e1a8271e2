"""Model code (inference only) with parameter names identical to upstream F5-TTS checkpoints."""
