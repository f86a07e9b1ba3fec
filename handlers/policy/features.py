"""The features retrieval scores a (question, clause) pair on.

None names a policy, a topic or an evaluation question: they say how well
the words and the meaning match, and what kind of clause it is (a rule, a
definition, a scope statement, a first-person agreement) and whom it
addresses. Their weights are fitted (fit.py), not chosen.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from handlers.policy.audience import AUDIENCES, modality
from handlers.policy.parse import Clause

# "Can I ...?" is answered by a clause that states a rule; "who do I tell?" by one that says what to do.
PERMISSION = re.compile(
    r"(?:^|[,.;]\s*)(?:can|may|could|should|must|am i|are we|is it|do i|do we|would it|is there any problem)\b|"
    r"\b(?:is (?:that|this|it) (?:ok|okay|alright|all right|fine|allowed|a problem)|am i allowed|are we allowed)\b",
    re.I,
)
PROCEDURE = re.compile(
    r"\bwho (?:do|should|can|must) (?:i|we) (?:tell|report|contact|speak|go|ask|inform)|\bwhat (?:should|do|can|must) "
    r"(?:i|we) do\b|\bwhat happens\b|\bhow (?:do|should|can) (?:i|we)\b|\bwho (?:is|decides|approves)\b|"
    r"\bsupposed to\b|\b(?:to|tell) who\b|\bwho to\b|\bsay something\b|\bwhat now\b|\bnext steps?\b",
    re.I,
)
# "Does this apply to me?" is answered by whom the policy covers; "what counts as ...?" by a definition.
SCOPE_QUESTION = re.compile(
    r"\b(?:apply|applies|cover|covers|covered|include[sd]?) (?:to )?(?:me|us|volunteers?|governors?|staff)\b|"
    r"\bwho (?:is|does) (?:this|the) policy\b|\bam i (?:covered|included)\b",
    re.I,
)
DEFINITION_QUESTION = re.compile(
    r"\bwhat (?:counts|is meant|does .{1,30} mean|is classed)\b|\bdefin\w+|\bcount(?:s|ed)? (?:as|under)\b|"
    r"\b(?:does|do|is|are) .{1,30} (?:count|included|covered)\b",
    re.I,
)
PROCEDURE_WORDS = re.compile(
    r"\b(?:report\w*|rais\w+|alert\w*|inform\w*|record\w*|contact\w*|refer\w*|approv\w*|permission|consent|"
    r"designated safeguarding lead|dsl|headteacher|head teacher|manager|police)\b",
    re.I,
)
ROLES = ("rule", "definition", "scope", "agreement", "statement")
OTHERS = ("pupils", "parents", "governors", "visitors")
FEATURES = (
    "words",
    "words_log",
    "dense",
    "dense_gap",
    "heading_dense",
    "coverage",
    "permission_rule",
    "procedure_match",
    "audience_named",
    "scope_question",
    "definition_question",
    "dense_z",
    "words_z",
    "weighted_coverage",
    "entities",
    "dense_rank",
    "words_rank",
    "heading_coverage",
    "permission_forbids",
    "late",
    "window",
    "window_z",
    "window_rank",
    *(f"role_{r}" for r in ROLES),
    "audience_staff",
    "audience_other",
    "log_length",
    "long",
    "whole_list",
    "child",
    "short",
    "forbids",
    "obliges",
    "permits",
)
STATIC = (*FEATURES[FEATURES.index("role_rule") :], "procedural")  # the last column is not scored alone


def clause_features(clause: Clause) -> list[float]:
    """The question-independent part, computed once per clause (columns named in STATIC)."""
    n = len(clause.text)
    return [
        *(1.0 if clause.role == r else 0.0 for r in ROLES),
        1.0 if clause.audience == "staff" else 0.0,
        1.0 if clause.audience in OTHERS else 0.0,
        math.log(1 + n) / 7.0,
        1.0 if n > 600 else 0.0,
        1.0 if clause.parent is None and clause.complete and re.search(r":\s+\S", clause.text) else 0.0,
        1.0 if clause.parent else 0.0,
        1.0 if n < 40 else 0.0,
        *(1.0 if m else 0.0 for m in modality(clause)),
        1.0 if PROCEDURE_WORDS.search(f"{clause.lead} {clause.text}") else 0.0,
    ]


@dataclass(slots=True)
class QueryFeatures:
    question: str
    words: np.ndarray
    dense: np.ndarray
    heading: np.ndarray
    coverage: np.ndarray
    static: np.ndarray
    weighted: np.ndarray | None = None  # idf-weighted share of the question's known words in each clause
    entities: np.ndarray | None = None  # 1 where the clause names every person the question is about
    heading_coverage: np.ndarray | None = None  # share of the question's known words in the clause's heading path
    unknown: float = 0.0  # share of the question's words this policy never uses
    centroid: float = 0.0  # meaning similarity of the question to the policy as a whole
    late: np.ndarray | None = None  # late-interaction (max-sim) similarity of the question's word pieces
    pieces: np.ndarray | None = None  # (question content word pieces, clauses): each piece's best max-sim
    terms: int = 0  # distinct words of the question (stemmed, stopwords dropped)
    window: np.ndarray | None = None  # best meaning similarity to one passage window of each clause

    def column(self, name: str) -> np.ndarray:
        return self.static[:, STATIC.index(name)]

    def matrix(self) -> np.ndarray:
        """(clauses, FEATURES) for this question."""
        if len(self.words) == 0:
            return np.zeros((0, len(FEATURES)), dtype=np.float32)
        top = float(self.words.max())
        permission = 1.0 if PERMISSION.search(self.question) else 0.0
        procedure = 1.0 if PROCEDURE.search(self.question) else 0.0
        window = self.window if self.window is not None else self.dense
        named = 1.0 if any(AUDIENCES[name].search(self.question) for name in OTHERS) else 0.0
        dynamic = np.stack(
            [
                self.words / top if top > 0 else self.words,
                np.log1p(self.words) / 3.0,
                self.dense,
                self.dense - float(self.dense.max()),
                self.heading,
                self.coverage,
                permission * self.column("role_rule"),
                procedure * self.column("procedural"),
                named * self.column("audience_other"),
                (1.0 if SCOPE_QUESTION.search(self.question) else 0.0) * self.column("role_scope"),
                (1.0 if DEFINITION_QUESTION.search(self.question) else 0.0) * self.column("role_definition"),
                _z(self.dense),
                _z(self.words),
                self.weighted if self.weighted is not None else self.coverage,
                self.entities if self.entities is not None else np.ones(len(self.words)),
                _reciprocal_rank(self.dense),
                _reciprocal_rank(self.words),
                self.heading_coverage if self.heading_coverage is not None else np.zeros(len(self.words)),
                permission * self.column("forbids"),
                self.late if self.late is not None else self.dense,
                window,
                _z(window),
                _reciprocal_rank(window),
            ],
            axis=1,
        )
        return np.concatenate([dynamic, self.static[:, :-1]], axis=1).astype(np.float32)


def _z(values: np.ndarray) -> np.ndarray:
    """How far above this policy's typical clause a clause stands, in standard deviations (divided by 4)."""
    return (values - values.mean()) / (values.std() + 1e-6) / 4.0


def _reciprocal_rank(values: np.ndarray) -> np.ndarray:
    """1 for the policy's best clause on this measure, 1/2 for the next and so on: a scale that means the same
    in a policy of 16 clauses and one of 300."""
    ranks = np.empty(len(values), dtype=np.float32)
    ranks[np.argsort(-values, kind="stable")] = np.arange(1, len(values) + 1)
    return 1.0 / ranks
