"""Scene headings (`INT. THE ARCHIVE - NIGHT`) from a segment's location and time of day."""

from __future__ import annotations

import re

_EXTERIOR = {
    "street", "road", "alley", "highway", "bridge", "harbour", "harbor", "port", "dock", "pier",
    "beach", "shore", "coast", "sea", "ocean", "river", "lake", "forest", "woods", "jungle", "field",
    "meadow", "farm", "garden", "park", "square", "plaza", "courtyard", "yard", "rooftop", "roof",
    "deck", "cliff", "mountain", "hill", "valley", "desert", "island", "cemetery", "graveyard", "sky",
    "outside", "outdoors", "exterior", "camp", "canyon", "swamp", "runway", "skyline",
}
_INTERIOR = {
    "room", "hall", "hallway", "corridor", "office", "kitchen", "bedroom", "bathroom", "apartment",
    "flat", "house", "home", "cabin", "cottage", "archive", "library", "museum", "shop", "store", "bar",
    "pub", "cafe", "diner", "restaurant", "church", "chapel", "temple", "station", "hospital", "ward",
    "clinic", "lab", "laboratory", "basement", "cellar", "attic", "vault", "bunker", "cockpit",
    "warehouse", "factory", "studio", "theatre", "theater", "classroom", "prison", "cell", "inside",
    "interior", "lobby", "elevator", "tunnel", "cave", "car", "train", "bus", "tent", "hotel",
}
_ALREADY_HEADED = re.compile(r"^(INT|EXT|EST|I/E|INT\.?/EXT)[ .]", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")


def _setting(text: str) -> str | None:
    """`INT.` or `EXT.` when the words of `text` say so, None when they do not (or say both)."""
    words = {w[:-1] if w.endswith("s") and w[:-1] in _EXTERIOR | _INTERIOR else w
             for w in _WORD.findall(text.lower())}
    outside, inside = bool(words & _EXTERIOR), bool(words & _INTERIOR)
    if outside != inside:
        return "EXT." if outside else "INT."
    return None


def scene_heading(location: str, time_of_day: str, description: str = "") -> str:
    """`INT./EXT. PLACE - TIME`: the setting from the place's name, else its description, else both."""
    place = " ".join(location.split()).upper()
    time = time_of_day.upper()
    if _ALREADY_HEADED.match(place):
        return f"{place} - {time}"
    setting = _setting(location) or _setting(description) or "INT./EXT."
    return f"{setting} {place} - {time}"
