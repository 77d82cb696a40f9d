"""Extension ``bearertokenauth``: listeners that name it require ``Authorization: Bearer <token>``.

The token comes from ``token`` (use ``${env:VAR}``) or the first line of ``filename``; it is
compared in constant time (``hmac.compare_digest``) so response timing reveals nothing about it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

TYPE = "bearertokenauth"


@dataclass
class Config:
    token: str = ""
    filename: str = ""
    scheme: str = "Bearer"

    def validate(self) -> None:
        if bool(self.token) == bool(self.filename):
            raise ValueError("token: set exactly one of token or filename")
        if self.filename and not Path(self.filename).is_file():
            raise ValueError(f"filename: {self.filename} is not a readable file")
        if not self.scheme or " " in self.scheme:
            raise ValueError("scheme: must be one word, e.g. Bearer")


def create_default_config() -> Config:
    return Config()


class BearerTokenAuth:
    def __init__(self, config: Config) -> None:
        self.config = config
        token = config.token
        if config.filename:
            token = Path(config.filename).read_text().strip().splitlines()[0].strip()
        self._expected = f"{config.scheme} {token}".encode()
        self.failures = 0

    def start(self) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def authenticate(self, authorization: str | None) -> bool:
        """True when the Authorization header value carries the configured token."""
        given = (authorization or "").strip().encode("utf-8", "replace")
        ok = hmac.compare_digest(given, self._expected)
        if not ok:
            self.failures += 1
        return ok

    def counters(self) -> dict[str, int]:
        return {"auth_failures": self.failures}


def create(config: Config) -> BearerTokenAuth:
    return BearerTokenAuth(config)
