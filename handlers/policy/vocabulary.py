"""The words staff use and the words UK school policies use for the same thing.

Each group maps many surface forms to one canonical token, applied to both the
question and the policy, so "ex-student", "former pupil" and "past pupil" meet.
These are general to UK school social media policies, not to any one of them.
"""

from __future__ import annotations

import re

# Phrases first (longest meaning wins), then single words.
PHRASES: list[tuple[str, str]] = [
    (
        r"\b(?:former|ex|past|previous|prior|old)[- ]?(?:pupils?|students?|learners?)\b|\bleft (?:the )?school\b|\bleavers?\b",
        " formerpupil ",
    ),
    (
        r"\bhead ?of ?school\b|\bhead ?teachers?\b|\bheadmaster\b|\bheadmistress\b|\bprincipal\b|\bthe head\b|\bmy head\b",
        " headteacher ",
    ),
    (r"\bdesignated safeguarding lead\b|\bdsl\b|\bchild protection\b", " safeguarding "),
    (
        r"\bfriend(?:s|ed|ing)?\b(?! of the school)|\bfriend(?:ship)? requests?\b|\bfollow(?:s|ed|ing)? (?:me|requests?|back)\b|\bfollowers?\b|\bconnect(?:ion)? requests?\b|"
        r"\badd(?:ing|ed)? (?:me|them|him|her|my|pupils?|students?|children)\b|\bbefriend\w*\b|\bmake (?:a )?friends?\b",
        " friendrequest ",
    ),
    (
        r"\bworking (?:hours|day|time)\b|\bwork hours\b|\bschool day\b|\bduring (?:work|lessons|the day)\b|\bat work\b|"
        r"\bin school time\b|\bcontracted hours\b",
        " workinghours ",
    ),
    (
        r"\bsocial (?:media|network\w*)\b|\bfacebook\b|\binstagram\b|\btik ?tok\b|\btwitter\b|\bx\.com\b|\bsnapchat\b|"
        r"\bwhats ?app\b|\binsta\b|\bfb\b|\bsnap\b|\btweet\w*|\blinked ?in\b|\byoutube\b|\breddit\b|\bmessenger\b|\bonline\b",
        " socialmedia ",
    ),
    (
        r"\bteaching assistants?\b|\bco-?workers?\b|\bcolleagues?\b|\bstaff members?\b|\bother staff\b|\b(?:fellow|other) teachers?\b",
        " colleague ",
    ),
    (
        r"\bfamily members?\b|\brelatives?\b|\bnephews?\b|\bnieces?\b|\bcousins?\b|\bgrand(?:son|daughter|child)\w*\b|"
        r"\bmy (?:own )?(?:son|daughter|child|children|kids?)\b|\brelated\b|\bmember of (?:the |an |my |their )?[\w']*\s?family\b",
        " relative ",
    ),
    (
        r"\bmy (?:year \d+ |reception |nursery )?class\b|\byear \d+s?\b|\breception (?:class|children|kids)\b|\bmy form\b",
        " pupil ",
    ),
    (r"\bfake accounts?\b|\baliases?\b|\banonymous\w*\b|\bpseudonym\w*\b", " anonymous "),
    (
        r"\bappl(?:y|ies|ied) to\b|\bwho (?:is|are) covered\b|\bscope\b|\bfor all (?:employees|staff|adults)\b|"
        r"\bthis policy (?:covers|applies)\b",
        " policyscope ",
    ),
    (
        r"\b(?:say|mention|state|reveal|show|list|put|disclose|tell people)\b[^.?]{0,60}\b(?:i work|my (?:job|employer|workplace)|"
        r"where i work)\b|\bidentify (?:themselves|myself|yourself|ourselves)\b|\brepresentative of the school\b|"
        r"\b(?:staff members|personnel) of (?:the|their) school\b|\bnaming the school\b",
        " identifyemployer ",
    ),
    (
        r"\bmoan\w*|\bcomplain\w*|\bcriticis\w*|\bcriticiz\w*|\brant\w*|\bvent(?:ing)?\b|\bslag\w* (?:off|the)|\bbad ?mouth\w*|"
        r"\bdisparag\w*|\bnegative (?:comments?|things|posts?)|\braising (?:and escalating )?concerns|\bdisrepute\b",
        " criticise ",
    ),
    (r"\bradicali[sz]\w*|\bextremis\w*|\bterroris\w*|\bprevent duty\b|\bthe prevent\b", " radicalisation "),
    (
        r"\b(?:i'?m|i am|being|been|get(?:ting)?) (?:harass\w*|bull(?:y|ied)\w*|troll\w*|abus\w*|threaten\w*|targeted|picked on)\b|"
        r"\bvictims?\b|\bsubjected to\b|\breceives? (?:any )?(?:threats|abuse)\b",
        " victim ",
    ),
    (r"\b(?:accept\w*|declin\w*|refus\w*|reject\w*|ignor\w*|approv\w*|authoris\w*)\b", " respondrequest "),
    (r"\b(?:look(?:ing)? at|view\w*|brows\w*|check(?:ing)? out|visit\w*|access\w*|stalk\w*)\b", " viewaccess "),
    (r"\btalk(?:ing)? (?:to|with) (?:\w+ ){1,3}about\b|\bengage in conversations?\b", " discuss "),
    (r"\btalk(?:ing)? about\b|\bdiscuss\w*|\bconversations?\b|\bchat(?:ting)? about\b|\bgossip\w*", " discuss "),
    (
        r"\bdo (?:i|we) (?:have|need) to\b|\bam i (?:required|expected|obliged)\b|\bmust i\b|\bcompulsory\b|\bmandatory\b|"
        r"\bexpectation\b|\bcondition of employment\b|\brequirement\b|\bobliged\b",
        " obligation ",
    ),
    (r"\blog ?in details\b|\bpasswords?\b|\bcredentials\b|\baccount details\b", " password "),
    (
        r"\bcyber ?bull\w*|\btroll\w*|\bharass\w*|\babus\w*|\bbull(?:y|ied|ying)\b|\bthreat\w*|\binsult\w*|\bnasty\b",
        " harassment ",
    ),
    (r"\bjournalists?\b|\breporters?\b|\bthe press\b|\bnewspapers?\b|\bmedia enquir\w*", " journalist "),
    (
        r"\bpictures?\b|\bphotos?\b|\bphotographs?\b|\bimages?\b|\bvideos?\b|\bselfies?\b|\bpics?\b|\bfootage\b",
        " image ",
    ),
    (r"\blogos?\b|\bbranding\b|\bbadges?\b|\bcrests?\b", " logo "),
]
WORDS: dict[str, str] = {
    "mum": "parent",
    "mums": "parent",
    "dad": "parent",
    "dads": "parent",
    "mother": "parent",
    "father": "parent",
    "parents": "parent",
    "carer": "parent",
    "carers": "parent",
    "guardian": "parent",
    "guardians": "parent",
    "pupils": "pupil",
    "student": "pupil",
    "students": "pupil",
    "child": "pupil",
    "children": "pupil",
    "kid": "pupil",
    "kids": "pupil",
    "learner": "pupil",
    "learners": "pupil",
    "youngster": "pupil",
    "tell": "report",
    "inform": "report",
    "alert": "report",
    "raise": "report",
    "notify": "report",
    "reported": "report",
    "reporting": "report",
    "whistleblow": "report",
    "whistleblowing": "report",
    "phone": "device",
    "mobile": "device",
    "phones": "device",
    "mobiles": "device",
    "tablet": "device",
    "laptop": "device",
    "devices": "device",
    "e-mail": "email",
    "emails": "email",
    "e-mails": "email",
    "profile": "account",
    "profiles": "account",
    "page": "account",
    "pages": "account",
    "accounts": "account",
    "share": "post",
    "shared": "post",
    "sharing": "post",
    "publish": "post",
    "published": "post",
    "upload": "post",
    "uploaded": "post",
    "tweet": "post",
    "posting": "post",
    "posted": "post",
    "posts": "post",
    "sacked": "disciplinary",
    "sack": "disciplinary",
    "fired": "disciplinary",
    "dismissed": "disciplinary",
    "dismissal": "disciplinary",
    "discipline": "disciplinary",
    "disciplined": "disciplinary",
    "trouble": "disciplinary",
    "private": "privacy",
    "settings": "privacy",
    "confidential": "confidentiality",
    "personal": "personal",
    "schedule": "scheduled",
    "scheduling": "scheduled",
    "leaves": "leave",
    "leaving": "leave",
    "left": "leave",
    "quits": "leave",
    "departs": "leave",
    "message": "communicate",
    "messages": "communicate",
    "messaging": "communicate",
    "contact": "communicate",
    "chat": "communicate",
    "talk": "communicate",
    "speak": "communicate",
    "dm": "communicate",
    "communication": "communicate",
    "communications": "communicate",
}
# Who the question is about decides contact questions (a pupil, a former pupil, a relative, a parent,
# a colleague): these words count double in a question.
AUDIENCE_WEIGHT = {"relative": 2.0, "formerpupil": 2.0, "parent": 1.5, "colleague": 1.5, "pupil": 1.3}
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "do",
        "does",
        "did",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "their",
        "they",
        "them",
        "he",
        "she",
        "his",
        "her",
        "what",
        "which",
        "who",
        "whom",
        "can",
        "could",
        "may",
        "might",
        "would",
        "should",
        "will",
        "shall",
        "must",
        "have",
        "has",
        "had",
        "not",
        "no",
        "yes",
        "so",
        "than",
        "then",
        "too",
        "very",
        "just",
        "also",
        "about",
        "into",
        "out",
        "up",
        "down",
        "over",
        "any",
        "all",
        "some",
        "such",
        "own",
        "same",
        "other",
        "only",
        "how",
        "when",
        "where",
        "why",
        "ok",
        "okay",
        "allowed",
    ]
)
_TOKEN = re.compile(r"[a-z0-9]+")
_COMPILED = [(re.compile(p, re.I), r) for p, r in PHRASES]


def _stem(word: str) -> str:
    if word.endswith(("ss", "us", "is")):  # discuss, status, this: no plural to strip
        return word
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)] + keep
            if suffix in ("ing", "ed") and len(stem) >= 3 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
                stem = stem[:-1]  # setting -> set, stopped -> stop
            return stem
    return word


def canonical_tokens(text: str) -> list[str]:
    """Lowercased, phrase-canonicalised, stemmed tokens without stopwords.

    Canonical tokens are added alongside the original words, so exact wording
    still counts."""
    lowered = text.lower().replace("\u2019", "'")
    expanded = lowered
    for pattern, token in _COMPILED:
        expanded = pattern.sub(rf"\g<0>{token}", expanded)
    out = []
    for word in _TOKEN.findall(expanded):
        if word in STOPWORDS or len(word) < 2:
            continue
        canon = WORDS.get(word)
        out.append(_stem(word))
        if canon:
            out.append(canon)
    return out
