"""chanx: typed, authenticated, observable WebSocket consumers for Django Channels."""

__version__ = "0.1.0"

__all__ = ["__version__"]
