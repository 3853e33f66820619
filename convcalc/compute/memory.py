"""Memory planning: what a run needs against what the machine has free now."""

from __future__ import annotations

from convcalc.errors import RuntimeFailure


def available_memory() -> int | None:
    """Bytes of memory available now (Linux's MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def require_memory(needed: int, advice: str) -> None:
    """Refuse, before any work, a run needing more than the memory available now.

    Raises RuntimeFailure naming both amounts and ``advice`` (what to try instead).
    """
    available = available_memory()
    if available is not None and needed > available:
        raise RuntimeFailure(
            f"this needs about {needed / 2**30:.1f} GiB of memory and {available / 2**30:.1f} "
            f"GiB is available; {advice}"
        )
