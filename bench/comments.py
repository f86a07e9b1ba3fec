"""Realistic comments for the polling benches: what a primary school's blog and social posts
mostly get (questions, praise, chat), with a few complaints, built from templates and fillers
so that thousands of comments are all different. Deterministic: comment (feed, n) is always
the same text. Written for the benches; no dataset is read.

Mix: 45 % questions, 30 % praise and thanks, 20 % chat (tags, emoji, "see you there"), 5 %
complaints. No abuse or safeguarding text: a poll's triage cost is measured on the routine
comments that make up almost all of a school's traffic.
"""

from __future__ import annotations

import random

YEARS = ["Reception", "Year 1", "Year 2", "Year 3", "Year 4", "Year 5", "Year 6", "nursery"]
EVENTS = [
    "the Christmas fair",
    "sports day",
    "the nativity",
    "the summer fete",
    "the Year 6 residential",
    "harvest festival",
    "the book fair",
    "parents' evening",
    "the school disco",
    "the trip to the museum",
    "World Book Day",
    "the cake sale",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "next week", "tomorrow"]
NAMES = ["Mrs Patel", "Mr Jones", "Miss Hughes", "Mrs Evans", "Mr Ali", "Ms Kowalski", "Mrs Brown", "Mr Okafor"]
KIDS = ["Amelia", "Noah", "Isla", "Muhammad", "Olivia", "Leo", "Freya", "Oscar", "Ava", "Harry", "Zara", "Jack"]

QUESTIONS = [
    "What time does {event} start on {day}?",
    "Is {event} still going ahead if it rains?",
    "Do {year} need to bring a packed lunch for {event}?",
    "How do I pay for {event}? The link on the app doesn't work for me",
    "Can younger siblings come to {event}?",
    "Is there parking at school for {event} or should we walk?",
    "Does anyone know if {year} need PE kit on {day}?",
    "When is the deadline for the {year} permission slips?",
    "Will {event} be filmed for parents who can't make it?",
    "What should {year} wear for {event}?",
    "Is breakfast club open on {day}?",
    "Are school dinners changing after half term?",
    "How do we book a slot for {event}?",
    "Is the uniform shop open on {day} afternoon?",
    "Can we still sign up for after-school football in {year}?",
    "Who do I speak to about {kid}'s reading book? It hasn't been changed",
    "Do we need to send in money for {event} or is it on ParentPay?",
    "What time is pick up on {day}, is it an early finish?",
]
PRAISE = [
    "Thank you so much for {event}, {kid} had the best time!",
    "Well done {year}, what a brilliant {event}!",
    "So proud of {kid} and all of {year} 👏",
    "Huge thanks to {name} and the PTA for organising {event}",
    "Fantastic photos, looks like everyone enjoyed {event}",
    "Lovely to see the children so happy, thank you {name}",
    "{kid} hasn't stopped talking about {event}, thank you all",
    "Brilliant work {year}! ⭐",
    "What a great school, thank you for all you do {name}",
    "Amazing effort from everyone at {event} ❤️",
]
CHAT = [
    "@{kid2}'s mum look, there's {kid}!",
    "See you all at {event} on {day}",
    "Ha, {kid} is the one at the back waving 😂",
    "Can't wait for {event}!",
    "Aww look at them all in {year} 😍",
    "Great memories, {kid} was in {name}'s class too",
    "We'll bring cakes for {event}",
    "Same time as last year I think",
    "👏👏👏",
    "Looking forward to it!",
]
OPENERS = ["", "", "", "Hi, ", "Morning all! ", "Quick one: ", "Sorry if this has been asked, ", "Hello {name}, "]
CLOSERS = ["", "", "", " Thanks", " x", " Thank you!", " 😊", " Many thanks, {kid}'s dad", " Cheers"]
COMPLAINTS = [
    "Really disappointed that {event} clashed with {day} pick up, nobody told us",
    "The car park on {day} was chaos again, can something be done?",
    "We still haven't had the photos from {event} that we paid for",
    "{year} were sent home with nits letters again, is anything being done?",
]


def comment(feed: int, n: int) -> str:
    """The n-th comment on feed `feed`: always the same text for the same pair."""
    rng = random.Random(feed * 100_003 + n)
    roll = rng.random()
    pool = QUESTIONS if roll < 0.45 else PRAISE if roll < 0.75 else CHAT if roll < 0.95 else COMPLAINTS
    kid, kid2 = rng.sample(KIDS, 2)
    fill = {"event": rng.choice(EVENTS), "day": rng.choice(DAYS), "year": rng.choice(YEARS)}
    text = rng.choice(OPENERS) + rng.choice(pool) + rng.choice(CLOSERS)
    return text.format(**fill, name=rng.choice(NAMES), kid=kid, kid2=kid2)
