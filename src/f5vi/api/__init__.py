"""The HTTP front door: :func:`f5vi.api.app.create_app`, run by :func:`f5vi.api.server.run`."""
