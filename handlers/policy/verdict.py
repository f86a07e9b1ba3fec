"""A short verdict from the clause's own modality: must not / should not
(No), may / can (Yes), only if / unless / except (the condition, quoted to the
end of its sentence), report to (who). The sentence of the clause that
shares most words with the question decides; sentences are split so that
"e.g.", "i.e." and other abbreviations never end one, and a condition too
long to quote whole is not cut: the verdict then points to the clause.
"""

from __future__ import annotations

import re

from handlers.policy.features import PERMISSION, PROCEDURE
from handlers.policy.parse import Clause
from handlers.policy.vocabulary import canonical_tokens

ABBREVIATIONS = re.compile(r"\b(?:e\.g|i\.e|etc|eg|ie|viz|cf|vs|mr|mrs|ms|dr|no|nos|para|approx|incl)\.$", re.I)
MAX_WORDS = 30
NEGATIVE = re.compile(
    r"\b(?:must not|should not|shouldn'?t|must never|never|not permitted|not allowed|are not to|is not to|decline|"
    r"do not|don'?t|under no circumstances|prohibited|banned|is discouraged|are discouraged|advised not|"
    r"not (?:be )?(?:used|published|discussed|shared|posted|accepted|taken)|will not|cannot|can ?not|may not|no )\b",
    re.I,
)
POSITIVE = re.compile(
    r"\b(?:may|can|are permitted|is permitted|are allowed|is allowed|are welcome|is acceptable)\b", re.I
)
CONDITION = re.compile(
    r"\b(?:the only exception|unless|except(?:ing)?|"
    r"without (?:the )?(?:prior |express |written )?(?:permission|consent|approval|agreement)|"
    r"only (?:if|when|where|with|via|after|once|for|on|through|in)|provided (?:that)?|"
    r"with (?:the )?(?:prior |express |written )?(?:permission|consent|approval|agreement))\b",
    re.I,
)
REPORT_TO = re.compile(
    r"\b(?:report(?:ed)?|raised?|alert(?:ed)?|inform(?:ed)?|notify|refer(?:red)?|tell|speak)\b[^.;]{0,40}?\bto "
    r"((?:the |their |your |a )?(?:[A-Z][\w'-]*|and|or|of|the|a|senior|member|staff|line manager|head ?teacher)"
    r"(?:\s+(?:[A-Z][\w'-]*|and|or|of|the|senior|member|staff|manager|lead|teacher|leader|team))*)",
)
OBLIGATION_QUESTION = re.compile(
    r"\b(?:do|does) (?:i|we|they|staff) (?:have|need) to\b|\bmust i\b|\bam i (?:required|expected|obliged)\b", re.I
)
NOT_REQUIRED = re.compile(r"\bnot (?:an? )?(?:expectation|requirement|condition|required|obliged|expected)\b", re.I)
OWN_MODALITY = re.compile(r"^(?:\w+ ){0,3}?(?:ensure|should|must|shall|need to|are required|is required)\b", re.I)
REFUSING = re.compile(r"\b(?:decline|refuse|reject|ignore|block|unfollow|avoid|delete|remove|stop|say no)\b", re.I)


def sentences(text: str) -> list[str]:
    """The clause's sentences; a full stop after an abbreviation does not end one."""
    out: list[str] = []
    for piece in re.split(r"(?<=[.!?;])\s+", text):
        starts = piece[:1].isupper() or (piece[:1] == "(" and piece[1:2].isupper())
        if out and (ABBREVIATIONS.search(out[-1]) or (not starts and out[-1].endswith("."))):
            out[-1] = f"{out[-1]} {piece}"
        elif piece:
            out.append(piece)
    return out


def _condition(sentence: str) -> str | None:
    """From the condition word to the end of its sentence, or None when that is too long to quote whole."""
    found = CONDITION.search(sentence)
    if not found:
        return None
    words = sentence[found.start() :].rstrip(" .;:").split()
    return " ".join(words) if len(words) <= MAX_WORDS else None


def _best_sentence(question: str, clause: Clause) -> str | None:
    """The sentence sharing most words with the question; None when none shares any (it does not answer)."""
    asked = set(canonical_tokens(question))
    candidates = sentences(clause.text) or [clause.text]
    best = max(candidates, key=lambda s: len(asked & set(canonical_tokens(s))))
    shared = asked & set(canonical_tokens(f"{clause.heading} {clause.lead} {clause.text}"))
    return best if shared else None


def verdict_for(question: str, clause: Clause) -> str | None:
    """A short plain-English verdict where the clause gives one; None where it does not."""
    frame = " ".join(p for p in (clause.heading.split(" › ")[-1], clause.lead) if p)
    sentence = _best_sentence(question, clause)
    if sentence is None:
        return None
    # the lead ("employees must not:") frames a bullet unless the bullet states its own modality
    # ("ensure that ...", "should ...": a bullet filed under a heading that does not fit it)
    own = NEGATIVE.search(sentence) or OWN_MODALITY.match(sentence) or POSITIVE.search(sentence)
    text = f"{frame} {sentence}" if frame and not own else sentence
    if PROCEDURE.search(question) or not PERMISSION.search(question):
        found = REPORT_TO.search(f"{clause.lead} {clause.text}")
        if found and (PROCEDURE.search(question) or "report" in question.lower()):
            who = re.sub(r"^their ", "your ", found.group(1).strip())
            return f"Report it to {who}."
    if OBLIGATION_QUESTION.search(question) and NOT_REQUIRED.search(text):
        return "No, it is not required."
    if not PERMISSION.search(question):
        return None
    condition = _condition(sentence)
    negative = bool(NEGATIVE.search(text))
    if negative and REFUSING.search(question):
        return "Yes."  # "Should I decline it?" against "Staff should decline ...": the policy agrees
    if negative and condition:
        if re.match(r"without\b", condition, re.I):
            return f"No, not {condition}."
        if re.match(r"(?:only|with)\b", condition, re.I):
            return f"Only {condition.removeprefix('only ').removeprefix('Only ')}."
        return f"No, {condition}."
    if negative:
        return "No."
    if condition:
        if re.match(r"only\b", condition, re.I):
            return f"Only {condition[5:]}."
        return f"Yes, {condition}."
    if POSITIVE.search(text):
        return "Yes."
    if re.search(r"\b(?:caution|cautious|careful|advised to|strongly advised)\b", text, re.I):
        return "Be careful: the policy advises caution."
    return None
