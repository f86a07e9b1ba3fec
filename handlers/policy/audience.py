"""Who a clause is addressed to, and what kind of statement it is.

Audience comes from where the document says so: the clause's heading path
("Acceptable Use Agreement › Pupils", "Parents/Carers"), then its lead words
("Parents should ..."), else it is for everyone. Role says whether the
clause states a rule, defines a term, says whom the policy covers, or is a
first-person agreement line ("I will ask a teacher ..."). Retrieval uses
both to prefer a rule for staff over definitions and other people's
agreements.
"""

from __future__ import annotations

import re

from handlers.policy.parse import Clause

AUDIENCES: dict[str, re.Pattern[str]] = {
    "pupils": re.compile(r"\b(?:pupils?|students?|children|learners?|young people|key stage|eyfs|ks[12])\b", re.I),
    "parents": re.compile(r"\b(?:parents?|carers?|guardians?|families)\b", re.I),
    "governors": re.compile(r"\b(?:governors?|governing (?:body|board)|trustees?)\b", re.I),
    "visitors": re.compile(r"\b(?:visitors?|contractors?|volunteers?|community users?)\b", re.I),
    "staff": re.compile(
        r"\b(?:staff|employees?|adults?|teachers?|practitioners?|colleagues?|members? of staff|workforce|"
        r"head ?teachers?|senior leaders?|dsl|designated safeguarding lead)\b",
        re.I,
    ),
}
_AGREEMENT = re.compile(r"^(?:[a-z]\)\s*)?I (?:will|won'?t|agree|understand|know|have|am|must|can|shall)\b")
_DEFINITION = re.compile(
    r"\b(?:is defined as|are defined as|refers? to|for the purposes? of this policy|means? (?:any|all|the|a)|"
    r"is the term|(?:includes?|including) but (?:is )?not limited to|the term)\b",
    re.I,
)
_SCOPE = re.compile(
    r"\b(?:this policy (?:applies|covers|relates|sets out|is intended|aims)|applies to all|purpose of this "
    r"policy|this policy should be read|read in conjunction|aims? of this policy)\b",
    re.I,
)
_RULE = re.compile(
    r"\b(?:must|should|shall|will not|are not|is not|never|may|only|required|expected|permitted|allowed|"
    r"prohibited|report\w*|ensure|do not|don'?t|need to|are to|is to)\b",
    re.I,
)


def audience_of(clause: Clause) -> str:
    """The deepest heading that names an audience wins, then the lead words, then the subject of the
    clause's own first sentence ("Parents are encouraged ...", "Staff must not ..."), else 'all'."""
    parts = [p for p in clause.heading.split(" › ") if p]
    for part in reversed(parts):
        found = _named(part)
        if found:
            return found
    if clause.lead:
        found = _named(clause.lead[:60])
        if found:
            return found
    return _subject(clause.text) or "all"


_SUBJECT = re.compile(
    r"^(?:(?:all|any|the|our|a|every|each|school|setting|individual)\s+)*([\w/-]+(?:\s+(?:of\s+staff|members?))?)", re.I
)
_MODAL_AFTER = re.compile(
    r"^(?:\s*(?:,|and|or|/)\s*[\w/-]+)*\s*(?:\([^)]*\)\s*)?(?:must|should|shall|will|are|is|may|can|cannot|need|have|"
    r"agree|understand)\b",
    re.I,
)


def _subject(text: str) -> str | None:
    """The audience a clause's first words name as the one who must, should or may act: 'Parents/Carers are
    encouraged to ...' is for parents, 'Staff must not ...' for staff; 'Photographs of pupils must ...' for
    nobody in particular (pupils are its object, not its subject)."""
    match = _SUBJECT.match(text.strip())
    if not match:
        return None
    head = match.group(1).split("/")[0].strip(",:;")
    rest = text.strip()[match.end() :]
    if not _MODAL_AFTER.match(rest) and not rest.lstrip().startswith("/"):
        return None
    for name, pattern in AUDIENCES.items():
        if pattern.match(head):
            return name
    return None


_AGREEMENT_HEADING = re.compile(r"\b(?:acceptable use|agreement|aup|code of conduct|responsibilit\w*)\b", re.I)
_NUMBERING = re.compile(r"^[\d.()a-z]{0,6}\s+(?=[A-Z])|^[\d.]+\s*")


def _named(text: str) -> str | None:
    """An audience a short heading or lead is addressed to: 'Pupils', 'Parents/Carers', 'Staff must not',
    'Acceptable Use Agreement for Pupils'; not 'Communication with Pupils' (rules for staff about pupils)."""
    text = _NUMBERING.sub("", text.strip())
    if len(text.split()) > 8:
        return None
    first = text.split("/")[0].split(" and ")[0]
    for name, pattern in AUDIENCES.items():
        match = pattern.search(first)
        if match and match.start() <= 4:
            return name
    if _AGREEMENT_HEADING.search(text):
        hits = [name for name, pattern in AUDIENCES.items() if pattern.search(text)]
        return hits[0] if len(hits) == 1 else None
    return None


NEGATIVE_MODAL = re.compile(
    r"\b(?:must not|should not|shall not|must never|should never|never|not permitted|not allowed|are not to|"
    r"is not to|do not|don'?t|under no circumstances|prohibited|will not|cannot|can ?not|may not|mustn'?t|"
    r"shouldn'?t|no (?:member|staff|employee|adult|one)\b|not (?:be )?(?:used|published|shared|posted|accepted))\b",
    re.I,
)
OBLIGATION_MODAL = re.compile(r"\b(?:must|should|shall|are required|is required|need to|have to|ensure)\b", re.I)
PERMISSIVE_MODAL = re.compile(r"\b(?:may|can|are permitted|is permitted|are allowed|is allowed|are welcome)\b", re.I)


def modality(clause: Clause) -> tuple[bool, bool, bool]:
    """(forbids, obliges, permits): what the clause's own words (with its lead) state."""
    text = f"{clause.lead} {clause.text}"
    forbids = bool(NEGATIVE_MODAL.search(text))
    return forbids, bool(OBLIGATION_MODAL.search(text)) and not forbids, bool(PERMISSIVE_MODAL.search(text))


def role_of(clause: Clause) -> str:
    text = clause.text
    if _AGREEMENT.match(text):
        return "agreement"
    if _SCOPE.search(text) or re.search(r"\bscope\b", clause.heading, re.I):
        return "scope"
    if _DEFINITION.search(text[:200]) and not re.search(r"\b(?:must|should not|must not)\b", text):
        return "definition"
    if re.search(r"\bdefinitions?\b|\bglossary\b|\bintroduction\b|\blegal framework\b", clause.heading, re.I):
        return "definition"
    last = clause.heading.split(" › ")[-1]
    if _RULE.search(text) or (clause.lead and _RULE.search(clause.lead)) or _RULE.search(last):
        return "rule"
    return "statement"


def tag(clauses: list[Clause]) -> list[Clause]:
    for clause in clauses:
        clause.audience = audience_of(clause)
        clause.role = role_of(clause)
    return clauses
