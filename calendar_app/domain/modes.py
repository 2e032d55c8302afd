"""How a visit happens (in person, by phone, by video), read from the words a booking
system uses for it where it has no code for it."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Swedish and English, as clinics write them: "Telefontid", "Telefonbesök", "Videobesök",
# "Digitalt vårdmöte", "Phone call".
_WORDS = (
    (re.compile(r"\b(video\w*|\w*videomöte\w*|digitalt? vårdmöte|distansbesök)\b", re.I), "video"),
    (re.compile(r"\b(telefon\w*|phone|telephone)\b", re.IGNORECASE), "phone"),
)


def mode_from_words(texts: Iterable[str]) -> str | None:
    """``"video"`` or ``"phone"`` if one of ``texts`` says so (the first that does), else None."""
    for text in texts:
        for pattern, mode in _WORDS:
            if text and pattern.search(text):
                return mode
    return None
