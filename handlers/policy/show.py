"""`hallmonitor policy show FILE`: the clause tree as the reader found it, so a
school can see how its document was read, with the reader's warnings."""

from __future__ import annotations

from handlers.policy.document import PolicyDocument

PREVIEW = 110


def render(document: PolicyDocument, *, full: bool = False) -> str:
    lines = [
        f"{document.path.name}: {document.title or '(no title found)'}"
        + (f" — {document.school}" if document.school else ""),
        f"{len(document.clauses)} clauses, {document.pages} page(s)"
        + (f"; next review {document.next_review}" if document.next_review else ""),
    ]
    lines += [f"warning: {w}" for w in document.warnings]
    heading = None
    for clause in document.clauses:
        if clause.heading != heading:
            heading = clause.heading
            depth = heading.count(" › ")
            lines.append(f"{'  ' * depth}{heading.split(' › ')[-1] if heading else '(no heading)'}")
        indent = "  " * (clause.heading.count(" › ") + 1) + ("  " if clause.parent else "")
        text = clause.text if full or len(clause.text) <= PREVIEW else clause.text[: PREVIEW - 3] + "..."
        tags = f"[{clause.audience}, {clause.role}]"
        lines.append(f"{indent}{clause.label} {tags}: {text}")
    return "\n".join(lines)
