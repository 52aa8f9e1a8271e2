"""RunPod serverless front door: ``handler.py`` drives the same JobManager/Synthesizer in-process."""
