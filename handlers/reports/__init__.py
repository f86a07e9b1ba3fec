"""Reports: figures over a period, the weekly SLT digest, the governors' termly report and their charts.

Counts and durations only: no comment text or personal data ever reaches a report.
"""
