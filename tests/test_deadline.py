"""The reply clock: 24 hours on a working day; otherwise 17:00 on the next
working day, with each nation's bank holidays and both clock changes."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, time

import pytest

from handlers.deadline import reply_by, why_due
from tests.helpers import hm


def due(received: str, nation: str = "england") -> str:
    return reply_by(datetime.fromisoformat(received), nation=nation).isoformat()


@pytest.mark.parametrize(
    ("received", "nation", "expected"),
    [
        # ordinary weekdays: 24 hours later, even into the weekend
        ("2026-11-17T10:00:00+00:00", "england", "2026-11-18T10:00:00+00:00"),
        ("2026-11-20T15:30:00+00:00", "england", "2026-11-21T15:30:00+00:00"),
        # offsets other than London's are converted, not ignored
        ("2026-11-17T10:00:00+05:30", "england", "2026-11-18T04:30:00+00:00"),
        # weekend -> 17:00 next working day
        ("2026-11-21T09:12:00+00:00", "england", "2026-11-23T17:00:00+00:00"),
        ("2026-11-22T23:59:00+00:00", "england", "2026-11-23T17:00:00+00:00"),
        # late Friday in London is still Friday: 24h
        ("2026-11-20T23:30:00+00:00", "wales", "2026-11-21T23:30:00+00:00"),
        # Friday 23:30 UTC is Saturday 00:30 BST in London: the weekend, judged in school time
        ("2026-06-19T23:30:00+00:00", "england", "2026-06-22T17:00:00+01:00"),
        # Easter Monday: a bank holiday outside Scotland only
        ("2026-04-06T11:00:00+01:00", "england", "2026-04-07T17:00:00+01:00"),
        ("2026-04-06T11:00:00+01:00", "wales", "2026-04-07T17:00:00+01:00"),
        ("2026-04-06T11:00:00+01:00", "northern-ireland", "2026-04-07T17:00:00+01:00"),
        ("2026-04-06T11:00:00+01:00", "scotland", "2026-04-07T11:00:00+01:00"),
        # Good Friday (all nations) -> the weekend -> Easter Monday is a holiday too (not in Scotland)
        ("2026-04-03T09:00:00+01:00", "england", "2026-04-07T17:00:00+01:00"),
        ("2026-04-03T09:00:00+01:00", "scotland", "2026-04-06T17:00:00+01:00"),
        # St Andrew's Day (Scotland only), Monday 30 Nov 2026
        ("2026-11-30T08:00:00+00:00", "scotland", "2026-12-01T17:00:00+00:00"),
        ("2026-11-30T08:00:00+00:00", "england", "2026-12-01T08:00:00+00:00"),
        # St Patrick's Day (Northern Ireland only), Tuesday 17 Mar 2026
        ("2026-03-17T12:00:00+00:00", "northern-ireland", "2026-03-18T17:00:00+00:00"),
        ("2026-03-17T12:00:00+00:00", "england", "2026-03-18T12:00:00+00:00"),
        # 2 January is a bank holiday in Scotland only (Friday 2 Jan 2026)
        ("2026-01-02T10:00:00+00:00", "scotland", "2026-01-05T17:00:00+00:00"),
        ("2026-01-02T10:00:00+00:00", "england", "2026-01-03T10:00:00+00:00"),
        # Christmas 2026: Fri 25 holiday, Sat, Sun, Mon 28 Boxing Day (substitute) -> Tue 29
        ("2026-12-25T10:00:00+00:00", "england", "2026-12-29T17:00:00+00:00"),
        # Christmas 2027 falls on Saturday: substitute days Mon 27 and Tue 28 -> Wed 29
        ("2027-12-25T10:00:00+00:00", "england", "2027-12-29T17:00:00+00:00"),
        # Christmas Eve 2027 is a Friday (working day): 24h, landing on Christmas Day
        ("2027-12-24T10:00:00+00:00", "northern-ireland", "2027-12-25T10:00:00+00:00"),
        # clocks go forward Sun 29 Mar 2026 01:00 UTC: Monday 17:00 is BST
        ("2026-03-28T12:00:00+00:00", "england", "2026-03-30T17:00:00+01:00"),
        ("2026-03-29T00:30:00+00:00", "england", "2026-03-30T17:00:00+01:00"),
        ("2026-03-29T01:30:00+01:00", "england", "2026-03-30T17:00:00+01:00"),
        # clocks go back Sun 25 Oct 2026 01:00 UTC: Monday 17:00 is GMT
        ("2026-10-24T16:00:00+01:00", "england", "2026-10-26T17:00:00+00:00"),
        ("2026-10-25T00:30:00+00:00", "england", "2026-10-26T17:00:00+00:00"),
        ("2026-10-25T01:30:00+00:00", "england", "2026-10-26T17:00:00+00:00"),
        # Friday before the spring change: 24 real hours (Saturday, no change yet)
        ("2026-03-27T18:00:00+00:00", "england", "2026-03-28T18:00:00+00:00"),
    ],
)
def test_reply_by(received: str, nation: str, expected: str) -> None:
    assert due(received, nation) == expected


def test_working_day_end_is_configurable() -> None:
    got = reply_by(datetime.fromisoformat("2026-11-21T09:00:00+00:00"), day_end=time(16, 30))
    assert got.isoformat() == "2026-11-23T16:30:00+00:00"


def test_the_deadline_is_24_real_hours_on_a_working_day() -> None:
    received = datetime.fromisoformat("2026-11-17T10:00:00+00:00")
    assert (reply_by(received) - received).total_seconds() == 24 * 3600


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        reply_by(datetime(2026, 11, 21, 9, 0))


def test_reason_names_the_holiday() -> None:
    assert "Saint Andrew" in why_due(datetime.fromisoformat("2026-11-30T08:00:00+00:00"), nation="scotland")


def _cli(*args: str, process: bool = False) -> subprocess.CompletedProcess[str]:
    return hm("deadline", *args, process=process)


def test_deadline_command_contract() -> None:
    run = _cli("--received", "2026-11-30T08:00:00Z", "--region", "scotland", process=True)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out == {"received": "2026-11-30T08:00:00+00:00", "reply_by": "2026-12-01T17:00:00+00:00"}


def test_deadline_command_rejects_missing_offset_clearly() -> None:
    run = _cli("--received", "2026-11-30T08:00:00")
    assert run.returncode == 2
    assert "no UTC offset" in run.stderr and "Traceback" not in run.stderr
    run = _cli("--received", "next tuesday")
    assert run.returncode == 2 and "not an ISO 8601 time" in run.stderr
