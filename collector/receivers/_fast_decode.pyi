from typing import Any

def setup(
    columns: tuple[str, ...],
    kinds: tuple[str, ...],
    status_codes: tuple[str, ...],
    service_key: str,
    /,
) -> None: ...
def decode(body: bytes, received_at: int, /) -> list[dict[str, Any]] | None: ...
