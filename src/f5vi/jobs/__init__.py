"""Durable jobs in front of one engine task: :class:`~f5vi.jobs.manager.JobManager`."""
