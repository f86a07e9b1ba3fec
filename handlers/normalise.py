"""How people type, undone before any rule or model reads a comment.

One general transformation, applied to training and live text alike:
Unicode folded (NFKC, case), links and @mentions replaced by placeholders,
emoji kept as their own tokens (skin tones and variation selectors dropped),
leetspeak and symbol swaps inside words undone ("h4te", "sh!t"), spaced-out
letters joined ("k i l l"), runs of three or more letters cut to two,
dropped g's restored ("fuckin" -> "fucking"), apostrophes dropped and
common text-speak spelt out ("u" -> "you"). The model's features also
spell "ck" as "k" (handlers/features.py), so "fukin" meets "fucking".
Text is capped at MAX_CHARS first: the model reads the opening of a long
comment; the whole text is still stored.
"""

from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 1000

URL = re.compile(r"(?:https?://|www\.)\S+|\b[\w-]+\.(?:com|co\.uk|net|org|biz|xyz|top|click|ly|io)(?:/\S*)?\b", re.I)
MENTION = re.compile(r"(?<!\w)@\w+")
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff]")
DROP = re.compile("[\ufe0f\ufe0e\u200d\U0001f3fb-\U0001f3ff]")
APOSTROPHE = re.compile(r"(?<=\w)['’`](?=\w)")
LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l", "€": "e"}
LEET_IN_WORD = re.compile(r"(?<=[a-z])[013457@$!|€]+(?=[a-z])|(?<=[a-z]{2})[013457@$]+(?=\b)")
MASK_IN_WORD = re.compile(r"(?<=[a-z])[*#]+(?=[a-z]|\b)")
SPACED = re.compile(r"\b(?:[a-z][ .\-_*]){2,}[a-z]\b")
REPEATS = re.compile(r"([a-z])\1{2,}")
NUM_WORD = re.compile(r"\b(\d+)([a-z]{2,})\b")
DROPPED_G = re.compile(r"\b([a-z]{2,}[^aeiou\W])in\b")
_KEEP_IN = (  # real words that end in -in, not a dropped g
    "cousin robin cabin margin violin basin raisin toxin muslin dolphin vitamin latin satin within begin skin "
    "twin spin thin grin chin akin admin login kin origin cumin muffin coffin puffin goblin napkin pumpkin "
    "assassin bulletin mandolin insulin penicillin virgin aspirin pin tin win bin sin gin din fin"
)
KEEP_IN = frozenset(_KEEP_IN.split())
TEXT_SPEAK = {
    "u": "you",
    "ur": "your",
    "r": "are",
    "ya": "you",
    "wat": "what",
    "wot": "what",
    "wht": "what",
    "cos": "because",
    "coz": "because",
    "cuz": "because",
    "bc": "because",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "nite": "night",
    "luv": "love",
    "bf": "boyfriend",
    "gf": "girlfriend",
    "yr": "year",
    "yrs": "years",
    "gonna": "going to",
    "wanna": "want to",
    "gotta": "got to",
    "n": "and",
    "&": "and",
    "b4": "before",
    "2day": "today",
    "2nite": "tonight",
    "2moro": "tomorrow",
    "ppl": "people",
    "sum1": "someone",
    "some1": "someone",
    "any1": "anyone",
    "no1": "no one",
    "every1": "everyone",
    "mum's": "mums",
    "mom": "mum",
    "mommy": "mummy",
}
WORD = re.compile(r"[a-z0-9&']+")


def _join_spaced(match: re.Match[str]) -> str:
    return re.sub(r"[ .\-_*]", "", match.group(0))


def _g(match: re.Match[str]) -> str:
    word = match.group(0)
    return word if word in KEEP_IN else match.group(1) + "ing"


def _speak(match: re.Match[str]) -> str:
    return TEXT_SPEAK.get(match.group(0), match.group(0))


def normalise(text: str, *, limit: int = MAX_CHARS) -> str:
    """The comment as the rules and the model read it (see the module docstring)."""
    text = unicodedata.normalize("NFKC", (text or "")[:limit]).casefold()
    text = DROP.sub("", text)
    text = URL.sub(" xurl ", text)
    text = MENTION.sub(" ", text)
    text = EMOJI.sub(lambda m: f" {m.group(0)} ", text)
    text = APOSTROPHE.sub("", text)
    text = LEET_IN_WORD.sub(lambda m: "".join(LEET[c] for c in m.group(0)), text)
    text = MASK_IN_WORD.sub("", text)
    text = SPACED.sub(_join_spaced, text)
    text = REPEATS.sub(r"\1\1", text)
    text = NUM_WORD.sub(r"\1 \2", text)
    text = DROPPED_G.sub(_g, text)
    text = WORD.sub(_speak, text)
    return re.sub(r"\s+", " ", text).strip()
