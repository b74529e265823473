"""What one request may hold, and the error a bad request gets (a 4xx with a message that
names the item and what is wrong)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Bounds on a request: body bytes, items per request, pixels per image, characters per text,
    seconds per audio clip."""

    max_request_bytes: int = 32 * 2**20
    max_items: int = 64
    max_pixels: int = 40_000_000
    max_text_chars: int = 20_000
    max_audio_seconds: int = 600

    def __post_init__(self) -> None:
        for k, v in vars(self).items():
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"Limits.{k} must be a positive integer, got {v!r}")


class InputError(Exception):
    """A request the server refuses: ``status`` (4xx) and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message
