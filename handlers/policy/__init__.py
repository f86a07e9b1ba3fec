"""Policy answers: a staff question answered from their own school's policy.

`ask(path, question)` is the Python API the chat surfaces use; indexes are kept
per file version in the process and their embeddings cached on disk.
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

from handlers.policy.answer import Answer, answer_question
from handlers.policy.document import PolicyError, load_policy
from handlers.policy.index import PolicyIndex

__all__ = ["Answer", "PolicyError", "ask", "index_for"]

_indexes: dict[tuple[str, int, int], PolicyIndex] = {}
_lock = threading.Lock()


def index_for(path: str | Path) -> PolicyIndex:
    """The index for a policy file, rebuilt only when the file changes."""
    path = Path(path).expanduser().resolve()
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such policy file; check the school's `policy` path in the config") from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _lock:
        index = _indexes.get(key)
        if index is None:
            index = PolicyIndex(load_policy(path))
            _indexes[key] = index
    return index


def ask(
    path: str | Path, question: str, *, today: date | None = None, ask_instead: str = "your headteacher or line manager"
) -> Answer:
    return answer_question(index_for(path), question, today=today or date.today(), ask_instead=ask_instead)
