#!/usr/bin/env python3
"""Validate the employee-phrased handbook evaluation set.

Usage::

    python bench/devset/check_employee_set.py [--corpus PATH] [--file PATH] [--overlap]

The set lives next to this script in ``handbook18f_employee.jsonl``. Each line is
one JSON object; paths in ``gold`` and ``near`` are relative to the corpus root
(default ``/work/shared/corpus/handbook-18f``, or ``$ENCLAVE_HANDBOOK_CORPUS``).

Split rule (deterministic, stratified)
--------------------------------------
Items are grouped by ``(answerable, topic)``. Groups are ordered by
``(answerable is False, topic)`` and numbered ``g = 0, 1, 2, ...``. Within a
group, items are ordered by ``id`` and numbered ``k = 0, 1, 2, ...``. An item is
``heldout`` when ``(k + g) % 2 == 1`` and ``dev`` otherwise. Alternating inside
each group puts every topic with two or more items in both splits; starting the
alternation at ``g`` keeps odd-sized groups from all tipping the same way. The
checker recomputes this rule and reports any item whose ``split`` disagrees.

Checks (any failure makes the exit status non-zero)
----------------------------------------------------
* every line is a JSON object with the expected keys and types; ids are unique;
* answerable items have 1-3 facts and at least one gold page; unanswerable items
  have empty ``gold`` and ``facts`` and at least one ``near`` page;
* every gold and near path exists in the corpus;
* every fact is a non-empty list of non-empty alternatives of at most 6 words,
  and at least one alternative of every fact occurs in at least one gold page
  after normalisation (lowercase, Unicode NFKC, ``[text](url)`` -> ``text``,
  ``*`` ``_`` and backticks removed, curly quotes made straight, whitespace
  collapsed);
* the heldout share is between 45% and 55% of answerables and of unanswerables,
  and every split matches the rule above;
* at least 110 answerable and 30 unanswerable items, at least 60 distinct gold
  pages, and no page is gold for more than 5 questions.

``--overlap`` adds a report: for each answerable question, the share of its
content words (lowercased, stopwords removed, length >= 4) that occur in the
title or headings of its gold page(s). It prints the mean and lists questions
above 0.5.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.encoding.sparse import STOPWORDS as _LEXICAL_STOPWORDS

DEFAULT_CORPUS = os.environ.get("ENCLAVE_HANDBOOK_CORPUS", "/work/shared/corpus/handbook-18f")
DEFAULT_FILE = Path(__file__).resolve().parent / "handbook18f_employee.jsonl"

MIN_ANSWERABLE = 110
MIN_UNANSWERABLE = 30
MIN_GOLD_PAGES = 60
MAX_QUESTIONS_PER_PAGE = 5
MAX_FACT_WORDS = 6
HELDOUT_LOW, HELDOUT_HIGH = 0.45, 0.55
OVERLAP_FLAG = 0.5

REQUIRED_KEYS = {"id", "split", "answerable", "question", "gold", "facts", "topic"}

_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"[*_`]")
_SPACE = re.compile(r"\s+")
_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
    }
)
_WORD = re.compile(r"[a-z0-9]+")

# The lexical encoder's stopwords plus the conversational words employees' questions carry
# ("hey", "really", "anyone", contractions): neither says what a question is about.
_CONVERSATIONAL = """
able above actually after against am anyone anything anyway aren't because before below
between can't cannot couldn't didn't doesn't doing don't during else even ever every get
gets getting going got had hadn't hasn't haven't having hers herself hey hi him himself i'd
i'll i'm i've isn't it's itself kind let's like lot me much my myself need needs nor now ok
okay ought ours ourselves please really shouldn't someone something sort still thanks that's
theirs themselves there's they're thing things those though through until upon us want wants
wasn't we're weren't what's while won't wouldn't yeah yes yet you'd you'll you're you've
yours yourself yourselves
"""
STOPWORDS = _LEXICAL_STOPWORDS | frozenset(_CONVERSATIONAL.split())


def normalise(text: str) -> str:
    """Normalise Markdown text (or a fact) for substring comparison."""
    text = unicodedata.normalize("NFKC", text)
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub("", text)
    text = text.translate(_QUOTES)
    text = _SPACE.sub(" ", text)
    return text.lower().strip()


def expected_split(items: list[dict[str, Any]]) -> dict[str, str]:
    """Apply the documented stratified alternation rule; return id -> split."""
    groups: dict[tuple[bool, str], list[str]] = defaultdict(list)
    for item in items:
        key = (not bool(item.get("answerable")), str(item.get("topic", "")))
        groups[key].append(str(item.get("id", "")))
    result: dict[str, str] = {}
    for g, key in enumerate(sorted(groups)):
        for k, item_id in enumerate(sorted(groups[key])):
            result[item_id] = "heldout" if (k + g) % 2 == 1 else "dev"
    return result


def content_words(text: str) -> list[str]:
    words = _WORD.findall(text.lower().replace("\u2019", "'"))
    return [w for w in words if len(w) >= 4 and w not in STOPWORDS]


def title_and_headings(page_text: str) -> set[str]:
    """Words of the front-matter title/subtitle and all Markdown headings."""
    parts: list[str] = []
    lines = page_text.splitlines()
    if lines and lines[0].strip() == "---":
        for line in lines[1:]:
            if line.strip() == "---":
                break
            match = re.match(r"\s*(title|subtitle)\s*:\s*(.*)", line)
            if match:
                parts.append(match.group(2))
    for line in lines:
        if re.match(r"\s{0,3}#{1,6}\s", line):
            parts.append(line.lstrip().lstrip("#"))
    return set(_WORD.findall(normalise(" ".join(parts))))


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def problem(self, msg: str) -> None:
        self.problems.append(msg)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)


class Corpus:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._raw: dict[str, str] = {}
        self._norm: dict[str, str] = {}

    def exists(self, rel: str) -> bool:
        path = (self.root / rel).resolve()
        return path.is_file() and self.root.resolve() in path.parents

    def raw(self, rel: str) -> str:
        if rel not in self._raw:
            self._raw[rel] = (self.root / rel).read_text(encoding="utf-8")
        return self._raw[rel]

    def norm(self, rel: str) -> str:
        if rel not in self._norm:
            self._norm[rel] = normalise(self.raw(rel))
        return self._norm[rel]


def load_items(path: Path, report: Report) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                report.problem(f"line {lineno}: invalid JSON ({exc})")
                continue
            if not isinstance(obj, dict):
                report.problem(f"line {lineno}: not a JSON object")
                continue
            items.append(obj)
    return items


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def check_item(item: dict[str, Any], corpus: Corpus, report: Report) -> None:
    item_id = str(item.get("id", "?"))
    missing = REQUIRED_KEYS - item.keys()
    if missing:
        report.problem(f"{item_id}: missing keys {sorted(missing)}")
        return
    if item["split"] not in ("dev", "heldout"):
        report.problem(f"{item_id}: split must be dev or heldout")
    if not isinstance(item["answerable"], bool):
        report.problem(f"{item_id}: answerable must be a boolean")
        return
    if not isinstance(item["question"], str) or not item["question"].strip():
        report.problem(f"{item_id}: empty question")
    if not isinstance(item["topic"], str) or not item["topic"].strip():
        report.problem(f"{item_id}: empty topic")
    if not _is_str_list(item["gold"]):
        report.problem(f"{item_id}: gold must be a list of strings")
        return
    facts = item["facts"]
    if not isinstance(facts, list) or not all(_is_str_list(f) for f in facts):
        report.problem(f"{item_id}: facts must be a list of lists of strings")
        return

    if item["answerable"]:
        if not item_id.startswith("a"):
            report.warn(f"{item_id}: answerable ids are expected to start with 'a'")
        if not item["gold"]:
            report.problem(f"{item_id}: answerable item without gold pages")
        if not 1 <= len(facts) <= 3:
            report.problem(f"{item_id}: needs 1-3 facts, has {len(facts)}")
    else:
        if not item_id.startswith("u"):
            report.warn(f"{item_id}: unanswerable ids are expected to start with 'u'")
        if item["gold"] or facts:
            report.problem(f"{item_id}: unanswerable item must have empty gold and facts")
        near = item.get("near")
        if not _is_str_list(near) or not near:
            report.problem(f"{item_id}: unanswerable item needs a non-empty near list")
        else:
            for rel in near:
                if not corpus.exists(rel):
                    report.problem(f"{item_id}: near path not in corpus: {rel}")

    gold_ok = [rel for rel in item["gold"] if corpus.exists(rel)]
    for rel in item["gold"]:
        if rel not in gold_ok:
            report.problem(f"{item_id}: gold path not in corpus: {rel}")
    if len(set(item["gold"])) != len(item["gold"]):
        report.problem(f"{item_id}: duplicate gold path")

    for n, alternatives in enumerate(facts, 1):
        if not alternatives or not all(a.strip() for a in alternatives):
            report.problem(f"{item_id}: fact {n} has an empty alternative list or value")
            continue
        for alt in alternatives:
            if len(alt.split()) > MAX_FACT_WORDS:
                report.problem(
                    f"{item_id}: fact {n} alternative longer than {MAX_FACT_WORDS} words: {alt!r}"
                )
        if gold_ok and not any(
            normalise(alt) in corpus.norm(rel) for alt in alternatives for rel in gold_ok
        ):
            report.problem(f"{item_id}: fact {n} {alternatives!r} not found in any gold page")


def check_set(items: list[dict[str, Any]], corpus: Corpus, report: Report) -> dict[str, Any]:
    ids = Counter(str(i.get("id")) for i in items)
    for item_id, count in ids.items():
        if count > 1:
            report.problem(f"duplicate id {item_id} ({count} times)")
    questions = Counter(str(i.get("question", "")).strip().lower() for i in items)
    for q, count in questions.items():
        if count > 1:
            report.problem(f"duplicate question: {q!r}")

    for item in items:
        check_item(item, corpus, report)

    answerable = [i for i in items if i.get("answerable") is True]
    unanswerable = [i for i in items if i.get("answerable") is False]
    if len(answerable) < MIN_ANSWERABLE:
        report.problem(f"only {len(answerable)} answerable items (need >= {MIN_ANSWERABLE})")
    if len(unanswerable) < MIN_UNANSWERABLE:
        report.problem(f"only {len(unanswerable)} unanswerable items (need >= {MIN_UNANSWERABLE})")

    rule = expected_split(items)
    for item in items:
        item_id = str(item.get("id"))
        if item.get("split") != rule.get(item_id):
            report.problem(
                f"{item_id}: split {item.get('split')!r} but rule says {rule.get(item_id)!r}"
            )

    shares: dict[str, float] = {}
    for name, group in (("answerable", answerable), ("unanswerable", unanswerable)):
        if not group:
            continue
        share = sum(1 for i in group if i.get("split") == "heldout") / len(group)
        shares[name] = share
        if not HELDOUT_LOW <= share <= HELDOUT_HIGH:
            report.problem(f"heldout share of {name} is {share:.1%} (need 45%-55%)")

    topics_by_split: dict[str, set[str]] = defaultdict(set)
    topic_counts: Counter[str] = Counter()
    for item in items:
        topics_by_split[str(item.get("split"))].add(str(item.get("topic")))
        topic_counts[str(item.get("topic"))] += 1
    for topic, count in sorted(topic_counts.items()):
        if count >= 2 and not all(topic in topics_by_split[s] for s in ("dev", "heldout")):
            report.problem(f"topic {topic!r} is not present in both splits")

    page_counts: Counter[str] = Counter(rel for i in answerable for rel in i.get("gold", []))
    for rel, count in page_counts.items():
        if count > MAX_QUESTIONS_PER_PAGE:
            report.problem(f"{rel} is gold for {count} questions (max {MAX_QUESTIONS_PER_PAGE})")
    if len(page_counts) < MIN_GOLD_PAGES:
        report.problem(f"only {len(page_counts)} distinct gold pages (need >= {MIN_GOLD_PAGES})")

    return {
        "answerable": answerable,
        "unanswerable": unanswerable,
        "shares": shares,
        "page_counts": page_counts,
        "topic_counts": topic_counts,
    }


def overlap_report(answerable: list[dict[str, Any]], corpus: Corpus) -> float:
    scores: list[tuple[float, dict[str, Any]]] = []
    for item in answerable:
        words = content_words(str(item["question"]))
        vocab: set[str] = set()
        for rel in item.get("gold", []):
            if corpus.exists(rel):
                vocab |= title_and_headings(corpus.raw(rel))
        share = sum(1 for w in words if w in vocab) / len(words) if words else 0.0
        scores.append((share, item))
    mean = sum(s for s, _ in scores) / len(scores) if scores else 0.0
    print(f"\noverlap (question content words in gold title/headings): mean {mean:.3f}")
    flagged = sorted((pair for pair in scores if pair[0] > OVERLAP_FLAG), key=lambda p: -p[0])
    print(f"questions above {OVERLAP_FLAG}: {len(flagged)}")
    for share, item in flagged:
        print(f"  {item['id']} {share:.2f}  {item['question']}")
    return mean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", default=DEFAULT_CORPUS, help="corpus root (default: %(default)s)"
    )
    parser.add_argument(
        "--file", default=str(DEFAULT_FILE), help="JSONL set (default: %(default)s)"
    )
    parser.add_argument(
        "--overlap", action="store_true", help="report question/title-heading word overlap"
    )
    args = parser.parse_args(argv)

    corpus_root = Path(args.corpus)
    if not corpus_root.is_dir():
        print(f"corpus not found: {corpus_root}", file=sys.stderr)
        return 2
    data_path = Path(args.file)
    if not data_path.is_file():
        print(f"set not found: {data_path}", file=sys.stderr)
        return 2

    report = Report()
    corpus = Corpus(corpus_root)
    items = load_items(data_path, report)
    stats = check_set(items, corpus, report)

    answerable, unanswerable = stats["answerable"], stats["unanswerable"]
    by_split: Counter[tuple[str, bool]] = Counter(
        (str(i.get("split")), bool(i.get("answerable"))) for i in items
    )
    print(f"file: {data_path}")
    print(f"items: {len(items)}  answerable: {len(answerable)}  unanswerable: {len(unanswerable)}")
    for split in ("dev", "heldout"):
        yes, no = by_split[(split, True)], by_split[(split, False)]
        print(f"  {split:8s} answerable {yes:3d}  unanswerable {no:3d}")
    for name, share in stats["shares"].items():
        print(f"  heldout share of {name}: {share:.1%}")
    print(f"distinct gold pages: {len(stats['page_counts'])}  topics: {len(stats['topic_counts'])}")

    if args.overlap and answerable:
        overlap_report(answerable, corpus)

    for msg in report.warnings:
        print(f"warning: {msg}")
    if report.problems:
        print(f"\n{len(report.problems)} problem(s):")
        for msg in report.problems:
            print(f"  - {msg}")
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
