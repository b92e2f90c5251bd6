"""Wall-clock helpers in the units the Matrix protocol uses."""

import time


def now_ms() -> int:
    return int(time.time() * 1000)
