"""The package's version, read by the build (hatch) and sent in the WebSocket's User-Agent."""

__version__ = "0.1.0"
