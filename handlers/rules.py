"""Triage rules: precise patterns, each with the reason a moderator reads.

A rule has a weight: 2 is enough on its own, 1 needs another signal of the
same category (another rule, or the model). Patterns describe kinds of
language (a threat names a person and an act), not particular sentences,
and read the normalised text (handlers/normalise.py), so "fukin", "@name"
and "h4te" meet the same patterns. `RuleClassifier` is the fallback when
the shipped head cannot be read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from handlers.normalise import normalise
from handlers.verdict import Verdict, verdict_for

THRESHOLD = 2
PRECEDENCE = ("safeguarding", "abuse", "media", "spam", "complaint", "question", "praise")


@dataclass(frozen=True, slots=True)
class Rule:
    category: str
    pattern: re.Pattern[str]
    reason: str
    weight: int = 2


def _r(category: str, pattern: str, reason: str, weight: int = 2) -> Rule:
    # Rules read normalised (case-folded) text, so no re.I: matching is nearly twice as fast.
    return Rule(category, re.compile(pattern.replace("[A-Z]", "[a-z]")), reason, weight)


# Words for people the school is responsible for or employs.
CHILD = (
    r"(?:child(?:ren)?|kids?|pupils?|students?|son|daughter|boy|girl|lad|lass|little one|year ?\d+s?|y\d|toddler|baby)"
)
STAFF = (
    r"(?:teachers?|head(?:teacher|mistress|master)?|deputy|senco|ta|teaching assistant|staff|governors?|"
    r"receptionist|office|dinner lad(?:y|ies)|lunch(?:time)? staff|caretaker|mr\.? \w+|mrs\.? \w+|miss \w+|ms\.? \w+)"
)
FAMILY_ADULT = (
    r"(?:step-?dad|step-?mum|step-?father|step-?mother|dad|mum|father|mother|uncle|aunt(?:ie)?|"
    r"(?:mum'?s|mom'?s) (?:boy|girl)friend|boyfriend|girlfriend|grand(?:dad|pa|ma|mother|father)|carer|brother|sister|"
    r"parents?|foster \w+)"
)

INSULT = (
    r"(?:idiots?|morons?|imbeciles?|cretins?|clueless|useless|pathetic|incompetent|waste of (?:space|oxygen)|"
    r"stupid|thick as|brain ?dead|halfwits?|numpties|dimwits?|scum|vile|disgusting (?:woman|man|person)|"
    r"cows?|bitch(?:es)?|slags?|whores?|twats?|pricks?|dicks?|wankers?|tossers?|dickheads?|arseholes?|"
    r"assholes?|cunts?|bastards?|losers?|ugly|fat (?:cow|pig|slob)|pigs?|vermin|snowflakes?|clowns?|witch(?:es)?|"
    r"hags?|old bags?|liars?|cowards?|brainless|gormless|spineless|excuse for an? \w+|creeps?|"
    r"dinosaurs?|jobsworths?|muppets?|plonkers?|scroungers?)"
)

# Figurative or friendly uses removed before matching ("smashed it", "killing me").
FIGURATIVE = re.compile(
    r"\b(?:smash(?:ed|ing)? it|nailed it|killed it|killing it|(?:is|are|was|were) killing me|killer|"
    r"bloody (?:brilliant|marvellous|good|great|amazing|fantastic|hell|lovely|well)|to die for|dying to|"
    r"dying of laughter|died laughing|murder (?:for|on) (?:my|the) \w+|could kill for|fighting fit)\b",
    re.I,
)

# What figures of speech mean, for the model: it should read the sense, not the violent word.
LITERAL: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.I), r)
    for p, r in [
        (
            r"\b(?:smash(?:ed|ing)?|nail(?:ed|ing)?|kill(?:ed|ing)?|ace(?:d)?|boss(?:ed)?) (?:it|that)\b",
            "did really well",
        ),
        (
            r"\b(?:smash(?:ed|ing)?|destroy(?:ed)?|annihilat\w+|crush(?:ed)?) the (?:\w+ )?(?:race|quiz|match|game|competition|test|final)\b",
            "did really well in the competition",
        ),
        (
            r"\b(?:is|are|was|were) (?:absolutely |literally )?(?:killing|murdering|destroying) me\b",
            "is very hard for me",
        ),
        (r"\b(?:was|is|were) (?:absolute |pure )?(?:murder|a killer|brutal|torture)\b", "was very hard"),
        (r"\bkiller\b", "very hard"),
        (r"\b(?:to die for|dying to|died laughing|dying of laughter|i'?m dead|i'?m dying)\b", "great fun"),
        (r"\bbloody (brilliant|marvellous|good|great|amazing|fantastic|lovely|well)\b", r"really \1"),
    ]
]


def literal(text: str) -> str:
    """Text with figures of speech replaced by their plain meaning."""
    for pattern, replacement in LITERAL:
        text = pattern.sub(replacement, text)
    return text


RULES: list[Rule] = [
    # --- safeguarding: possible harm to a child -> DSL only
    _r(
        "safeguarding",
        rf"\b{FAMILY_ADULT}\b[^.!?]{{0,40}}\b(?:hurts?|hurting|hits?|hitting|beats?|beating|kicks?|punch(?:es|ed)?|"
        r"slaps?|burn(?:s|t|ed)|touch(?:es|ed|ing)|abus(?:es|ed|ing)|locks? (?:her|him|them) (?:in|out))\b",
        "possible disclosure of harm at home",
    ),
    _r(
        "safeguarding",
        rf"\b(?:{STAFF}|{FAMILY_ADULT}|adults?|man|woman|bloke)\b[^.!?]{{0,40}}\b(?:grabb?ed|hit|slapped|kicked|punched|"
        r"shoved|pushed|choked|strangled|dragged|shook|smacked|threw|throttled|pinned)\b[^.!?]{0,15}\b(?:my|our|his|her|"
        rf"their|a|the|this|that) (?:little |young )?{CHILD}\b",
        "an adult may have physically harmed a child",
    ),
    _r(
        "safeguarding",
        r"\b(?:told|says?|said|saying|disclosed|confided)\b[^.!?]{0,60}\b(?:hurts?|hits?|beats?|touch(?:es|ed)|"
        r"abus\w+|scared to go home|afraid to go home|not allowed to eat)\b",
        "a child may have disclosed harm",
    ),
    _r(
        "safeguarding",
        r"\b(?:older|grown|adult|strange|unknown|random|old) (?:man|men|woman|women|person|people|guy|bloke|adult|"
        r"stranger)s?\b[^.!?]{0,80}\b(?:messag\w*|meet(?:ing)? up|meet|photos?|pictures?|pics|videos?|"
        r"contact\w*|talk\w* to|chat\w*|gifts?|address|where (?:she|he|they) lives?)",
        "possible grooming: an adult seeking contact with a child",
    ),
    _r(
        "safeguarding",
        rf"\b(?:ask(?:ed|ing|s)?|wants?|want(?:ed|ing)|tell(?:ing|s)?|told)\b[^.!?]{{0,30}}\b(?:{CHILD}|her|him|them|"
        r"my \w+)\b[^.!?]{0,20}\b(?:to send|for|send)\b[^.!?]{0,15}\b(?:photos?|pictures?|pics|selfies?|nudes?|"
        r"videos?)\b",
        "possible grooming: someone asking a child for images",
    ),
    _r(
        "safeguarding",
        r"\b(?:hurt(?:ing)?|harm(?:ing)?|cut(?:ting)?|kill(?:ing)?|starv(?:e|ing)) (?:himself|herself|themselves|"
        r"themself|myself)\b|\bself[- ]?harm\w*|\bsuicidal\b|\b(?:commit|attempt\w*|thinking about|thoughts of) "
        r"suicide\b|\bwants? to die\b|\bend (?:it all|(?:his|her|my|their) life)\b|\bkill (?:yo)?urself\b|\bkys\b|"
        r"\boverdos\w*|\btaken? (?:loads|lots|a load|a bunch|all) of (?:my |her |his |mums? |dads? )?(?:pills|tablets)\b",
        "possible self-harm or suicide risk",
    ),
    _r(
        "safeguarding",
        rf"\b(?:sell\w*|giv\w*|offer\w*|supply\w*|deal\w*|pushing|passing)\b[^.!?]{{0,30}}\b(?:vapes?|drugs?|weed|"
        rf"cannabis|alcohol|booze|cigarettes?|fags|pills|knives|knife)\b[^.!?]{{0,40}}\b(?:{CHILD}|gates?|school)\b",
        "children may be being supplied drugs, alcohol or weapons",
    ),
    _r(
        "safeguarding",
        rf"\b(?:pay\w*|offer\w*|giv\w*|us\w*|get\w*)\b[^.!?]{{0,40}}\b(?:{CHILD}|boys|girls|lads)\b[^.!?]{{0,40}}\b(?:to |if they |for )"
        r"(?:carry\w*|deliver\w*|drop\w* off|run\w*|hold\w*|mov\w*)\b[^.!?]{0,20}\b(?:packages?|parcels?|bags?|errands|stuff|phones?)\b|"
        r"\bcounty lines\b|\bin exchange for (?:running errands|delivering)",
        "possible criminal exploitation of children (county lines)",
    ),
    _r(
        "safeguarding",
        rf"\b(?:photos?|pictures?|pics|images?|videos?) of (?:the |our |my |a |some )?(?:{CHILD})\b[^.!?]{{0,60}}"
        r"\b(?:reposted|re-?shared|shared|posted|stolen|copied|used|on (?:a|another|some) (?:stranger'?s?|"
        r"random|fake|someone else'?s) (?:account|page|profile|site))",
        "images of pupils may be being misused",
    ),
    _r(
        "safeguarding",
        r"\b(?:radicali[sz]\w*|(?:hates?|hating|hatred of|kill all) (?:people|anyone|everyone|all) (?:of|from|who)\b"
        r"[^.!?]{0,30}(?:religions?|races?|faiths?|countries|colou?r))",
        "possible radicalisation or extremist material",
    ),
    _r(
        "safeguarding",
        r"\b(?:extremis\w*|jihad\w*|terroris\w*|far[- ]right|neo-?nazi|white power|beheading)",
        "extremist words (needs the model to agree)",
        1,
    ),
    _r(
        "safeguarding",
        r"\b(?:hasn'?t|has not|haven'?t|have not|not) been (?:at|in|to) school (?:for|in) (?:weeks|days|ages|"
        r"a (?:week|while|month|fortnight))|\bnobody (?:is )?answer\w* the door|\bmissing from (?:home|school)\b|"
        r"\b(?:he|she|they|my (?:son|daughter|child)|[a-z]+ in year \d+) (?:has|have|is|are|went|gone) (?:been )?missing\b|"
        r"\b(?:hasn'?t|has not|haven'?t|have not) (?:been seen|come home|been home)\b|"
        r"\b(?:drunk|off (?:her|his) face|high)\b[^.!?]{0,40}\b(?:drove|driving|drive|put them in the car)\b|"
        r"\bleft (?:alone|on (?:his|her|their) own) (?:at home|all (?:day|night)|overnight)|"
        r"\b(?:no|never any) food (?:at|in the) home\b|\bsleeping rough\b",
        "possible neglect or a missing child",
    ),
    _r(
        "safeguarding",
        rf"\b(?:{CHILD}|[A-Z][a-z]+)\b[^.!?]{{0,40}}\blives? (?:at|on) (?:number |no\.? )?\d+\b|"
        r"\b(?:her|his|their) (?:home )?address is\b",
        "a child may be identified with where they live",
    ),
    _r(
        "safeguarding",
        rf"\b(?:touch(?:ed|ing)|groped|molest\w*|sexual(?:ly)?)\b[^.!?]{{0,40}}\b(?:{CHILD}|her|him)\b|"
        r"\b(?:inappropriate(?:ly)?)\b[^.!?]{0,20}\b(?:touch\w*|messag\w*|photos?)|"
        rf"\b{FAMILY_ADULT}\b[^.!?]{{0,10}}\btouches (?:her|him|them)\b",
        "possible sexual harm to a child",
    ),
    _r(
        "safeguarding",
        rf"\b(?:ask\w*|approach\w*|follow\w*|film\w*|photograph\w*|watch\w*|offer\w*)\b[^.!?]{{0,20}}"
        rf"\b(?:{CHILD})\b[^.!?]{{0,30}}\b(?:where (?:they|she|he) lives?|to get in|into (?:his|a|the) (?:car|van)|"
        r"home address|to come with|sweets)\b",
        "a stranger approaching children",
    ),
    _r(
        "safeguarding",
        r"\b(?:cutting|cuts|cut|scratching|burning|harming) (?:her|his|their|my) (?:arms?|legs?|wrists?|skin|self)\b|"
        r"\b(?:doesn'?t|does not|don'?t|didn'?t) want to (?:live|be alive|be here) any ?more\b",
        "possible self-harm or suicide risk",
    ),
    _r(
        "safeguarding",
        r"\b(?:always|constantly|often) (?:hungry|starving|filthy|dirty|unwashed|smelly)\b|"
        r"\b(?:nobody|no one|no-one) (?:feeds|looks after|collects|picks up) (?:him|her|them)\b|"
        r"\bcomes? to school (?:with|in) (?:no|without|the same)\b|\bbruises? all over\b",
        "possible neglect of a child",
    ),
    _r(
        "safeguarding",
        r"\bi'?m (?:really )?worried about (?:a|this|that|one|the) (?:child|pupil|boy|girl|kid)\b",
        "a concern about a child's welfare",
        1,
    ),
    # --- abuse: insults, threats, harassment, discrimination, sexualised remarks -> SLT
    _r("abuse", rf"\b{INSULT}\b", "insulting language", 1),
    _r(
        "abuse",
        rf"\b(?:{STAFF}|the school|this school|they|she|he|you|you lot|that woman|that man)\b[^.!?]{{0,40}}\b(?:is|are|'s|'re|"
        rf"a|an|total|complete|absolute|bunch of|load of|pack of)\b[^.!?]{{0,25}}\b(?:{INSULT}|joke|disgrace|"
        r"thick|perv\w*|nonces?|paedos?)\b",
        "insult aimed at staff or the school",
    ),
    _r(
        "abuse",
        r"\b(?:idiots?|morons?|clueless|incompetent|stupid|ugly|fat|thick|lazy|useless) (?:cow|bitch|woman|man|bloke|"
        r"idiot|moron|head|teacher|ta|twat|prick|tosser|pig|old bag|witch)\b",
        "personal insult",
    ),
    _r(
        "abuse",
        r"\b(?:wants?|needs?|deserves?|could do with|asking for) (?:a )?(?:good )?(?:slap|slapping|kicking|punch|"
        r"smack|hiding|battering|beating|thump|clip round the ear)\b|"
        r"\b(?:i'?ll|i will|i'?m gonna|i am going to|we'?ll|gonna|going to) (?:be )?(?:wait\w* for|get|hurt|batter|"
        r"smash|punch|slap|kill|sort out|deal with|find|come for|visit)\b[^.!?]{0,20}\b(?:her|him|them|you|that "
        r"(?:teacher|woman|man|head)|the head|mr\.? \w+|mrs\.? \w+|miss \w+)\b|"
        r"\bsee how (?:brave|tough|hard|big|clever) (?:she|he|they|you) (?:is|are)\b|"
        r"\bi know where (?:she|he|they|you) (?:lives?|parks?|works?)\b|\bwatch (?:your|her|his|their) back\b|"
        r"\b(?:you'?ll|she'?ll|he'?ll|they'?ll) (?:regret|pay for) (?:it|this|that)\b|"
        r"\bburn (?:the|this|that) (?:school|place) down\b|"
        r"\b(?:hope|wish)\b[^.!?]{0,30}\b(?:gets?|has|have|had) (?:an accident|hit by|run over|food poisoning|cancer|hurt|"
        r"beaten|what they deserve)\b|\bnobody would (?:cry|care|miss (?:her|him))\b|\b(?:some of the|the) (?:dads|parents|lads) "
        r"will (?:deal with|sort|make)\b|\bget what'?s coming\b|what'?s coming to (?:her|him|them)\b|"
        r"\b(?:people|we|i|everyone) know (?:where|which way|what time|which house)\b[^.!?]{0,30}\b(?:she|he|they|you|"
        r"her|his|the head'?s?)\b|\bbetter not be (?:walking|out|alone)\b|\bwants? sorting out\b|"
        r"\b(?:hope|wish) (?:she|he|that teacher|the head|they) (?:has|have|gets?) an accident\b|\bteach (?:her|him|them|that \w+) a lesson\b|"
        r"\b(?:won'?t|will not|wouldn'?t) (?:forget|know what hit)\b|\bi know (?:what car|where) (?:she|he|they)\b|\bwaiting (?:for|outside)\b[^.!?]{0,30}\b(?:car ?park|"
        r"gates?|home|house)\b",
        "threat of violence or intimidation",
    ),
    _r(
        "abuse",
        r"\bcan'?t (?:even )?speak (?:proper )?english\b|\bgo back to (?:your|their|her|his) (?:own )?country\b|"
        r"\b(?:send\w*|sent|go) (?:them |\w+ )?back (?:where|to where) (?:they|she|he) (?:came|come|belong)|"
        r"\b(?:the )?\w+ (?:kids|family|children|lot|people)\b[^.!?]{0,10}\b(?:stink|smell|are filthy|are dirty|"
        r"are scum|are vermin|are animals)\b|\b(?:pakis?|wogs?|niggers?|gypos?|pikeys?|chinks?|kikes?|"
        r"faggots?|fags|dykes?|trann(?:y|ies)|retards?|retarded|spastics?|spazz?|mongs?)\b|"
        r"\b(?:immigrants?|foreigners|refugees|muslims|jews|travellers|gypsies|blacks|asians)\b[^.!?]{0,30}\b(?:ruin\w*|"
        r"shouldn'?t be|out of (?:our|this) school|don'?t belong|take over|dirty|filthy)\b|\b(?:foreign|immigrant|"
        r"migrant|refugee|traveller|muslim|polish|romanian|black|asian) (?:families|kids|parents|lot|people) "
        r"(?:get|are|always|never|ruin|should)\b",
        "discriminatory remark about a family or group",
    ),
    _r(
        "abuse",
        r"\b(?:pervs?|perverts?|paedos?|pedos?|paedophiles?|nonces?|groomers?)\b|\b(?:fit|sexy|hot|fanciable|"
        r"shaggable|doable) (?:teacher|head|ta|mum|mom|miss|mrs\.? \w+|miss \w+|dinner lady)\b|"
        r"\b(?:would|i'?d) (?:do|bang|shag|smash) (?:her|him|that)\b|\b(?:keep|take) (?:his|her|their) (?:eyes|hands) "
        r"off (?:the )?(?:mums|dads|women|girls|boys|kids|children)\b|\b(?:tits|boobs|arse|ass|legs) on (?:her|that)\b",
        "sexualised remark about a person",
    ),
    _r(
        "abuse",
        r"\b(?:f[\*#@!]{2,}k?|f+u*c?k+\w*|f\*+|feck\w*)\s+(?:this|the|that|you|off|them|her|him|those|these|all|"
        r"your)\b|\b(?:shit|shite|crap|dogshit) (?:school|teachers?|head|staff)\b|\bpiece of (?:shit|crap)\b",
        "abusive swearing at the school or staff",
    ),
    _r(
        "abuse",
        r"\b(?:should|needs? to|ought to|must) be (?:kicked out|expelled|thrown out|excluded|sacked|fired|"
        r"locked up|put down)\b|\bnobody (?:wants|likes) (?:him|her|them)\b|\bget rid of (?:him|her|them|that)\b|"
        r"\bneeds? (?:sacking|firing|locking up)\b",
        "hostile call to remove a person",
        1,
    ),
    # --- media enquiries -> reply, routed to the head (SLT) first
    _r(
        "media",
        r"\b(?:i'?m|i am|we'?re|we are|this is|it'?s|hello|hi)\b[^.!?]{0,20}\b(?:from|with|at|of)\b[^.!?]{0,25}\b(?:local paper|"
        r"(?:news)?paper|newsroom|news desk|news team|radio \w+|tv|channel \d|production company|magazine|press|the \w+ (?:post|echo|"
        r"herald|gazette|argus|chronicle|mirror|times|telegraph|courier|standard|news))\b|"
        r"\b(?:local paper|[a-z]+ news|channel \d|radio \w+) here\b|"
        r"\b(?:writer|blogger|producer|editor|presenter) (?:for|at|with|on)\b",
        "someone from the press or broadcast media is asking",
    ),
    _r(
        "media",
        r"\b(?:journalist|reporter|correspondent|news ?desk|newsroom|editor|producer|press office|"
        r"media enquir\w*|press enquir\w*)\b",
        "media enquiry: route to the headteacher before any reply",
    ),
    _r(
        "media",
        r"\b(?:bbc(?: radio \w+)?|itv(?: \w+)?|sky|channel 4|local paper|the paper|tv production|documentary|podcast|press team|channel 5|radio \w+|news(?:paper)?|herald|gazette|echo|chronicle|telegraph|"
        r"guardian|times|mirror|courier|argus|standard|observer|post|evening \w+)\b[^.!?]{0,40}"
        r"\b(?:here|story|covering|article|piece|report\w*|feature|interview\w*|statement|comment|film\w*|visit)\b",
        "a news outlet is asking",
        1,
    ),
    _r(
        "media",
        r"\b(?:would like|like to|love to|can|could|request(?:ing)?)\b[^.!?]{0,30}\b(?:a statement|comment on|an interview|"
        r"to interview|interview the head|a quote|speak to the head)\b|\bfor (?:a|our) (?:story|article|piece|report|feature)\b",
        "asks for a statement, comment or interview",
        1,
    ),
    # --- spam
    _r(
        "spam",
        r"\b(?:get|buy|gain|boost|grow) (?:your |real |more )?(?:instagram|tiktok|page|account|followers|likes|views|subscribers)\b|\blink in (?:my )?bio\b|"
        r"\bearn (?:from home|money|£|\$|\d)|\bwork from home\b|\bcrypto\w*|\bbitcoin|\bforex\b|\binvest(?:ment|ing)? "
        r"(?:opportunit\w+|plan)|\bwidow\b[^.!?]{0,40}\binheritance|\binheritance\b|\blottery\b|\bcasino\b|"
        r"\bonlyfans\b|\bsugar (?:daddy|mummy)\b|\b(?:hot|lonely|local) singles\b|\bmeet local (?:women|men|girls)\b|"
        r"\byou'?ve been (?:selected|chosen)\b|\bclaim (?:now|your (?:prize|gift|voucher))\b|\bclick (?:here|the link) to claim\b|"
        r"\bverify your account\b|\bloan approved\b|\bno credit checks?\b|\bweight loss\b|\bessays? written\b|"
        r"https?://\S+\.(?:biz|xyz|top|click)\b|\bwww\.\S+\.(?:biz|xyz|top|click)\b|\bone (?:simple|weird) trick\b|\bexclusive offer\b|\b\d+k for [£$]",
        "looks like spam or a scam",
    ),
    _r(
        "spam",
        r"\b(?:whatsapp|telegram|dm (?:me|us)|message (?:me|us)|real followers|cheap prices|make [£$]\d+|contact me|click (?:the |this )?link|visit (?:our|my) "
        r"(?:website|page|profile)|check (?:out )?my (?:page|profile)|free (?:gift|iphone|money)|limited time|"
        r"promo code|discount code|hello dear|dear friend|100% (?:free|guaranteed))\b|https?://(?:bit\.ly|tinyurl)",
        "promotional or contact-me-elsewhere wording",
        1,
    ),
    # --- complaints
    _r(
        "complaint",
        r"\b(?:disgust\w*|disgrace\w*|appall\w*|unacceptable|not (?:good|acceptable) enough|not acceptable|fed up|"
        r"sick (?:and tired )?of|a nightmare|still waiting|no(?:body|one)? (?:has )?(?:replied|responded|got back)|"
        r"never (?:replied|responded|heard back)|nobody (?:enforces|listens|tells|cares|bothers)|without (?:telling|"
        r"informing|warning)|left out|complain\w*|ridiculous|shocking|terrible|awful|worst|filthy|dirty|unsafe|"
        r"dangerous|disappoint\w*|let down|not happy|unhappy|unfair|rude|furious|angry|upset|poor (?:show|"
        r"communication|service)|keeps? (?:changing|cancell?ing|forgetting)|(?:is|are|seem) tiny|starving|"
        r"missed (?:out|golden time|break|lunch)|no one (?:told|informed)|waste of (?:time|money)|not impressed|"
        r"no (?:answer|response|reply)|chaos|shambles|(?:third|fourth|fifth|umpteenth) time|nobody seems to|"
        r"(?:raise|raising|take|taking) (?:it|this) (?:up )?with|is wrong about|should be ashamed|"
        r"not (?:right|on|fair|ok|okay)\b|hopeless|get (?:run over|hurt)|what a joke)",
        "expresses dissatisfaction",
    ),
    # --- questions
    _r("question", r"\?\s*$|\?\s", "asks a question"),
    _r(
        "question",
        r"^(?!what an? |how (?:lovely|nice|great|kind|wonderful|amazing|brilliant|cute|sweet)\b)"
        r"(?:what|when|where|who|why|how|is|are|do|does|did|can|could|will|would|has|have|should|which|any "
        r"(?:news|update|idea))\b|\b(?:please (?:let me know|advise|confirm)|does anyone know|i was wondering|"
        r"could you (?:tell|confirm|let))\b",
        "asks for information",
        1,
    ),
    # --- praise
    _r(
        "praise",
        r"\b(?:thank(?:s| you)|well done|fantastic|brilliant|amazing|wonderful|superb|excellent|lovely|proud|"
        r"congratulations|congrats|bravo|best (?:school|teachers?|day)|great (?:to see|job|work|day|news)|awesome|"
        r"incredible|outstanding|so good|beautiful|star(?:s)? of|a credit|legends?|smash(?:ed|ing)? (?:it|the \w+)|"
        r"killed it|nailed it|superstars?)\b|[👏🎉🥳💙❤️⭐🌟🙌]",
        "praise or thanks",
    ),
]


@dataclass(slots=True)
class RuleScores:
    scores: dict[str, int]
    reasons: dict[str, list[str]]

    def strong(self, category: str) -> bool:
        return self.scores.get(category, 0) >= THRESHOLD


def rule_scores(text: str, *, normalised: bool = False) -> RuleScores:
    """Points and reasons per category from the pattern rules."""
    text = text if normalised else normalise(text)
    cleaned = FIGURATIVE.sub(" ", text)
    scores: dict[str, int] = {}
    reasons: dict[str, list[str]] = {}
    for rule in RULES:
        # praise may be figurative ("smashed it"); everything else reads the literal-only text
        if rule.pattern.search(text if rule.category == "praise" else cleaned):
            scores[rule.category] = scores.get(rule.category, 0) + rule.weight
            found = reasons.setdefault(rule.category, [])
            if rule.reason not in found:
                found.append(rule.reason)
    return RuleScores(scores, reasons)


class RuleClassifier:
    """Weighted pattern rules; a category needs THRESHOLD points to win."""

    name = "auto:rules-v2"

    def classify(
        self, text: str, *, platform: str | None = None, author: str | None = None, school: str | None = None
    ) -> Verdict:
        found = rule_scores(text)
        for category in PRECEDENCE:
            needed = 1 if category in ("question", "praise") else THRESHOLD
            if found.scores.get(category, 0) >= needed:
                return verdict_for(category, found.reasons[category], self.name)
        return verdict_for("other", ["no reply needed: general remark"], self.name)

    def classify_many(self, texts: Sequence[str], *, school: str | None = None) -> list[Verdict]:
        return [self.classify(t) for t in texts]

    def refresh_labels(self, session: Session) -> None:
        """Rules do not learn."""
