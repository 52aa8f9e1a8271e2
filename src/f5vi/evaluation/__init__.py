"""``f5vi eval``: measure a checkpoint, a voice or a setting on a list of sentences.

Every utterance is a job of the ordinary job system (:class:`~f5vi.jobs.runtime.JobRuntime`: the same
scheduler, runner and engine as the service), then its audio is transcribed (CER/WER through the
canonicaliser of :mod:`f5vi.engine.text.canonical`) and compared with its reference voice (speaker
similarity, :mod:`f5vi.engine.speaker`) in the engine's turn. ``testlist`` reads the list, ``configs``
the ``--compare`` overrides, ``runner`` runs and measures, ``report`` writes CSV, JSON and HTML.
"""
