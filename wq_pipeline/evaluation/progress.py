"""A progress bar on stderr for the long stages (off with ``WQ_NO_PROGRESS=1``)."""

from __future__ import annotations

import os
import sys


def _progress_bar(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="win" if "ecompos" in desc else "it", file=sys.stderr,
                disable=os.environ.get("WQ_NO_PROGRESS") == "1", leave=False)

