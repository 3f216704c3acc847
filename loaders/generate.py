"""Synthetic chat traffic with known properties, for demos, tests and benchmarks.

Sessions follow daily and weekly cycles across several channels and agent versions;
conversation length is long-tailed; fallback topics are Zipf-distributed; flows complete or
are abandoned; feedback arrives from about a fifth of eligible sessions; one experiment has a
known true lift on conversion. On top of the clean events the generator can add duplicates,
late events (written to a later day's file) and invalid records, and it writes a manifest
with the exact counts it produced so that tests can reconcile loads against it. The manifest
is returned (and written only where asked, never among the event files, which a loader would
take for events).
"""

import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from .sdk import assign_variant

CHANNELS = (("web", 0.5), ("mobile", 0.3), ("whatsapp", 0.15), ("slack", 0.05))
# Hourly weights (UTC): quiet nights, a late-morning and an afternoon peak.
HOUR_WEIGHTS = (
    1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 11, 10, 10, 11, 11, 10, 9, 7, 6, 5, 4, 3, 2,
)
WEEKDAY_FACTORS = (1.0, 1.05, 1.05, 1.0, 0.95, 0.7, 0.6)
FALLBACK_TOPICS = (
    "billing", "refund", "shipping", "password reset", "order status", "cancellation",
    "technical issue", "pricing", "account", "delivery time", "returns", "warranty",
    "promo code", "language", "other",
)
FLOWS = ("onboarding", "checkout", "troubleshooting")
# Each tool fails and lags in its own way: (failure probability, lognormal mu, sigma) in ms.
TOOLS = {
    "search_kb": (0.03, 5.3, 0.5),
    "lookup_order": (0.08, 6.4, 0.7),
    "create_ticket": (0.16, 7.2, 0.9),
}
# Price per 1,000 tokens (in, out) by agent version: newer versions are cheaper to run.
TOKEN_PRICES = {"v1.0": (0.003, 0.006), "v1.1": (0.0025, 0.005), "v2.0": (0.001, 0.002)}
# A user comes back within RETURN_DAYS days with these odds: more often when the problem was
# not solved (an escalation, or nothing to show for it).
RETURN_IF_UNRESOLVED, RETURN_IF_RESOLVED, RETURN_DAYS = 0.35, 0.12, 6
EXPERIMENT = "greeting_test"
EXPERIMENT_VARIANTS = ("control", "treatment")
BASE_CONVERSION = 0.10
TREATMENT_LIFT = 0.25


@dataclass
class GeneratorConfig:
    days: int = 7
    sessions_per_day: int = 200
    seed: int = 1
    start: date | None = None
    duplicate_rate: float = 0.01
    late_rate: float = 0.02
    invalid_rate: float = 0.005
    gzip_output: bool = False

    def start_date(self) -> date:
        if self.start is not None:
            return self.start
        return datetime.now(UTC).date() - timedelta(days=self.days)


@dataclass
class Manifest:
    files: list[str] = field(default_factory=list)
    sessions: int = 0
    unique_events: int = 0
    duplicate_records: int = 0
    late_events: int = 0
    invalid_records: int = 0
    records_written: int = 0
    experiment: dict[str, Any] = field(default_factory=dict)


def _versions_for(day_index: int, days: int) -> tuple[tuple[str, float], ...]:
    progress = day_index / max(days - 1, 1)
    if progress < 0.4:
        return (("v1.0", 0.8), ("v1.1", 0.2))
    if progress < 0.7:
        return (("v1.1", 0.6), ("v2.0", 0.4))
    return (("v1.1", 0.2), ("v2.0", 0.8))


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([item for item, _ in weighted], [w for _, w in weighted])[0]


TOPIC_WEIGHTS = tuple(1 / rank**1.2 for rank in range(1, len(FALLBACK_TOPICS) + 1))


def _turn_count(rng: random.Random) -> int:
    # Long-tailed: most conversations are short, a few run long.
    return min(1 + int(rng.paretovariate(1.6)) + rng.randint(0, 2) - 1, 40)


class _SessionWriter:
    def __init__(self, rng: random.Random, seed: int) -> None:
        self.rng = rng
        self.seed = seed
        self.event_counter = 0

    def _event(
        self,
        session_id: str,
        user_id: str | None,
        channel: str,
        event_type: str,
        at: datetime,
        properties: dict[str, Any],
    ) -> dict[str, Any]:
        self.event_counter += 1
        record: dict[str, Any] = {
            "event_id": f"e{self.seed}-{self.event_counter:09d}",
            "session_id": session_id,
            "user_id": user_id,
            "event_type": event_type,
            "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
            "channel": channel,
            "properties": properties,
        }
        return record

    def session(
        self, session_number: int, started: datetime, version: str, user_id: str | None
    ) -> tuple[list[dict[str, Any]], bool]:
        """The session's events, and whether its problem was solved."""
        rng = self.rng
        session_id = f"s{self.seed}-{session_number:08d}"
        channel = _pick(rng, CHANNELS)
        variant = assign_variant(session_id, EXPERIMENT, EXPERIMENT_VARIANTS)
        base = {"agent_version": version}
        clock = started
        events = []

        def add(event_type: str, gap_seconds: float, **properties: Any) -> None:
            nonlocal clock
            clock = clock + timedelta(milliseconds=int(gap_seconds * 1000))
            events.append(
                self._event(session_id, user_id, channel, event_type, clock, base | properties)
            )

        add("session_start", 0)
        add("experiment_exposure", 0.05, test_name=EXPERIMENT, variant=variant)
        if rng.random() < 0.3:
            add("message_received", 0.4, text="Hi! How can I help?", latency_ms=120)
        turns = _turn_count(rng)
        fallbacks = 0
        for _ in range(turns):
            add("message_sent", rng.uniform(3, 60), text="user message")
            if rng.random() < 0.15:
                tool = rng.choice(list(TOOLS))
                failure_p, mu, sigma = TOOLS[tool]
                add(
                    "tool_called", 0.2, tool_name=tool,
                    success=rng.random() >= failure_p,
                    duration_ms=int(rng.lognormvariate(mu, sigma)),
                )
            if rng.random() < 0.08 + (0.04 if version == "v1.0" else 0):
                fallbacks += 1
                topic = rng.choices(FALLBACK_TOPICS, TOPIC_WEIGHTS)[0]
                key = "topic" if rng.random() < 0.8 else "intent"
                value = topic.upper() if rng.random() < 0.1 else topic
                add("fallback_triggered", 0.1, **{key: f" {value} "})
            # long-tailed: mostly around 700 ms, now and then many seconds
            tail = rng.paretovariate(1.5) if rng.random() < 0.04 else 1.0
            latency = int(rng.lognormvariate(6.5, 0.6) * tail)
            tokens_in = 150 + 40 * len(events) + int(rng.lognormvariate(4, 0.8))
            tokens_out = int(rng.lognormvariate(4.8, 0.6))
            price_in, price_out = TOKEN_PRICES[version]
            add(
                "message_received", latency / 1000, text="agent reply", latency_ms=latency,
                tokens_in=tokens_in, tokens_out=tokens_out,
                cost_usd=round((tokens_in * price_in + tokens_out * price_out) / 1000, 6),
            )
        flow_completed = False
        if rng.random() < 0.4:
            flow = rng.choice(FLOWS)
            add("flow_started", rng.uniform(1, 20), flow_name=flow)
            add("button_clicked", rng.uniform(1, 10), button_id=f"{flow}_next")
            if rng.random() < 0.6:
                add("flow_completed", rng.uniform(5, 120), flow_name=flow)
                flow_completed = True
            else:
                add("flow_abandoned", rng.uniform(5, 120), flow_name=flow, step="step_2")
        escalation_p = 0.04 + 0.15 * min(fallbacks, 2)
        escalated = rng.random() < escalation_p
        if escalated:
            add("escalation_requested", rng.uniform(1, 30), reason="user_request")
        conversion_p = BASE_CONVERSION * (1 + TREATMENT_LIFT if variant == "treatment" else 1)
        conversion_p *= 1.8 if flow_completed else 1
        converted = rng.random() < conversion_p
        if converted:
            add("conversion", rng.uniform(1, 60), goal="purchase", value=round(rng.uniform(5, 200), 2))
        messages = sum(e["event_type"] in ("message_sent", "message_received") for e in events)
        if messages > 3 and rng.random() < 0.2:
            rating: Any = rng.choices([1, 2, 3, 4, 5], [1, 1, 2, 4, 5])[0]
            if rng.random() < 0.03:
                rating = rng.choice(["great", 7, 0, 3.5])
            elif rng.random() < 0.1:
                rating = str(rating)
            add("feedback_submitted", rng.uniform(2, 30), rating=rating,
                thumbs="up" if rng.random() < 0.7 else "down")
        if rng.random() < 0.85:
            add("session_end", rng.uniform(1, 10))
        return events, not escalated and (converted or flow_completed)


def _broken_records(rng: random.Random, count: int, day: date) -> Iterator[str]:
    stamp = f"{day.isoformat()}T12:00:00Z"
    templates = [
        lambda: '{"event_id": "broken", "session_id": ',
        lambda: "[1, 2, 3]",
        lambda: json.dumps({"session_id": "s", "event_type": "session_start", "timestamp": stamp}),
        lambda: json.dumps(
            {"event_id": f"bad-{rng.random()}", "session_id": "s", "event_type": "typo_event",
             "timestamp": stamp}
        ),
        lambda: json.dumps(
            {"event_id": f"bad-{rng.random()}", "session_id": "s", "event_type": "conversion",
             "timestamp": "not a time"}
        ),
        lambda: json.dumps(
            {"event_id": f"bad-{rng.random()}", "session_id": "s", "event_type": "conversion",
             "timestamp": stamp, "properties": "oops"}
        ),
    ]
    for _ in range(count):
        yield rng.choice(templates)()


def _open(path: Path, gzip_output: bool) -> TextIO:
    if gzip_output:
        return gzip.open(path, "wt", encoding="utf-8")
    return path.open("w", encoding="utf-8")


def planned_files(config: GeneratorConfig) -> list[str]:
    """The names generate() writes: one file per day."""
    suffix = ".jsonl.gz" if config.gzip_output else ".jsonl"
    start = config.start_date()
    return [f"events-{(start + timedelta(days=i)).isoformat()}{suffix}" for i in range(config.days)]


def generate(config: GeneratorConfig, out_dir: Path) -> Manifest:
    rng = random.Random(config.seed)
    writer = _SessionWriter(rng, config.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = config.start_date()
    manifest = Manifest(
        experiment={
            "test_name": EXPERIMENT,
            "variants": list(EXPERIMENT_VARIANTS),
            "base_conversion": BASE_CONVERSION,
            "treatment_relative_lift": TREATMENT_LIFT,
        }
    )
    # Records due in a later day's file: (file day index, line).
    carried: dict[int, list[str]] = {}
    # Users due back on a later day: (day index, [user ids]).
    returning: dict[int, list[str]] = {}
    # a pool so large that a user seldom comes back by chance: returns are the ones drawn below
    users = max(1000, config.sessions_per_day * config.days * 3)
    session_number = 0
    suffix = ".jsonl.gz" if config.gzip_output else ".jsonl"
    for day_index in range(config.days):
        day = start + timedelta(days=day_index)
        versions = _versions_for(day_index, config.days)
        expected = config.sessions_per_day * WEEKDAY_FACTORS[day.weekday()]
        sessions_today = max(1, round(rng.gauss(expected, expected**0.5)))
        lines: list[str] = carried.pop(day_index, [])
        due_back = returning.pop(day_index, [])
        for number in range(sessions_today):
            session_number += 1
            hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
            started = datetime(day.year, day.month, day.day, hour, tzinfo=UTC) + timedelta(
                seconds=rng.uniform(0, 3600)
            )
            if number < len(due_back):
                user_id: str | None = due_back[number]
            else:
                user_id = None if rng.random() < 0.1 else f"u{config.seed}-{rng.randint(1, users):06d}"
            events, solved = writer.session(session_number, started, _pick(rng, versions), user_id)
            come_back = RETURN_IF_RESOLVED if solved else RETURN_IF_UNRESOLVED
            if user_id is not None and rng.random() < come_back:
                returning.setdefault(day_index + rng.randint(1, RETURN_DAYS), []).append(user_id)
            for event in events:
                line = json.dumps(event, ensure_ascii=False)
                manifest.unique_events += 1
                is_late = rng.random() < config.late_rate and day_index + 1 < config.days
                if is_late:
                    manifest.late_events += 1
                    later = min(config.days - 1, day_index + rng.randint(1, 3))
                    carried.setdefault(later, []).append(line)
                else:
                    lines.append(line)
                if rng.random() < config.duplicate_rate:
                    manifest.duplicate_records += 1
                    later = min(config.days - 1, day_index + rng.randint(0, 2))
                    if later > day_index:
                        carried.setdefault(later, []).append(line)
                    else:
                        lines.append(line)
        manifest.sessions += sessions_today
        invalid = sum(rng.random() < config.invalid_rate for _ in range(len(lines)))
        lines.extend(_broken_records(rng, invalid, day))
        manifest.invalid_records += invalid
        rng.shuffle(lines)
        path = out_dir / f"events-{day.isoformat()}{suffix}"
        with _open(path, config.gzip_output) as handle:
            handle.write("\n".join(lines))
            if lines:
                handle.write("\n")
        manifest.records_written += len(lines)
        manifest.files.append(path.name)
    return manifest


def write_manifest(manifest: Manifest, path: Path) -> None:
    path.write_text(json.dumps(asdict(manifest), indent=2))
