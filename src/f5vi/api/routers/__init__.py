"""One router per area of the API; :mod:`f5vi.api.app` includes them all."""
