"""Benchmark of the service-guide knowledge base: search latency and import time.

    python bench/kb_search.py [--queries N] [--synthetic 10000] [--no-import]

- search latency p50 / p99 per question (``SearchIndex.search``, the whole pipeline: normalisation, typo
  correction, aspect detection, segmentation, scoring, decision) over the evaluation questions, on the
  110-item sample catalogue and on a synthetic catalogue of 10,000 items (real items with town-specific
  names, so posting lists are as long as in a large real catalogue);
- index build time for both;
- import time (parse + validate + upsert in one transaction into a fresh SQLite database) of the sample
  catalogue in its three formats and of the 10,000-item catalogue exported to XLSX.

Targets (issue 3): p99 ≤ 2 ms at 110 items, ≤ 20 ms at 10,000 items.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.core.db import Base, create_engine, session_factory  # noqa: E402
from eval.run_eval import load_questions  # noqa: E402
from knowledge_base.importer import (  # noqa: E402
    DATA_DIR,
    SAMPLE_ALIASES,
    SAMPLE_CATALOGUE,
    import_catalogue,
    read_aliases,
    read_catalogue,
    write_xlsx,
)
from knowledge_base.schema import GuideItem  # noqa: E402
from knowledge_base.search import SearchIndex  # noqa: E402
from knowledge_base.textproc import tokenizer  # noqa: E402

TOWNS = [
    "嘉定",
    "大塘埠",
    "古陂",
    "大桥",
    "新田",
    "安西",
    "小江",
    "铁石口",
    "大阿",
    "油山",
    "小河",
    "西牛",
    "正平",
    "虎山",
    "崇仙",
    "万隆",
    "金盆山",
    "龙舌",
    "高桥",
    "坪石",
    "石背",
    "长安",
    "枫木",
    "江口",
    "安息",
    "太平",
]
TARGET_P99_MS = {110: 2.0, 10000: 20.0}


def synthetic_catalogue(items: list[GuideItem], n: int, seed: int = 7) -> list[GuideItem]:
    """``n`` items derived from the real ones: town-specific names and departments, unique codes."""
    rng = random.Random(seed)
    out: list[GuideItem] = []
    for i in range(n):
        base = items[i % len(items)]
        town = rng.choice(TOWNS)
        region = 36072200 + i // 999
        seq = i % 999 + 1
        kind = base.code.split("-")[1]
        out.append(
            replace(
                base,
                code=f"{region}-{kind}-{seq:03d}",
                name=f"{town}{base.name}" if i >= len(items) else base.name,
                department=f"{base.department}{town}所" if i >= len(items) else base.department,
            )
        )
    return out


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[k]


def bench_search(index: SearchIndex, questions: list[str], rounds: int) -> tuple[float, float, float]:
    for q in questions[:20]:  # warm the caches
        index.search(q)
    times: list[float] = []
    for _ in range(rounds):
        for q in questions:
            t0 = time.perf_counter()
            index.search(q)
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), percentile(times, 99), max(times)


async def bench_import(path: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/bench.db")
        try:
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            t0 = time.perf_counter()
            report = await import_catalogue(session_factory(engine), path)
            elapsed = time.perf_counter() - t0
            if not report.ok:
                raise SystemExit(report.summary())
            return elapsed
        finally:
            await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="knowledge-base search latency and import time")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the question set (default 5)")
    parser.add_argument("--synthetic", type=int, default=10000, help="size of the synthetic catalogue")
    parser.add_argument("--no-import", action="store_true", help="skip the import timings")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    tokenizer()
    print(f"jieba private tokenizer initialisation: {time.perf_counter() - t0:.2f} s (once per process)")
    catalogue = read_catalogue(SAMPLE_CATALOGUE).items
    aliases = read_aliases(SAMPLE_ALIASES).aliases
    questions = [q.text for q in load_questions()]
    failed = False
    for size in (len(catalogue), args.synthetic):
        items = catalogue if size == len(catalogue) else synthetic_catalogue(catalogue, size)
        t0 = time.perf_counter()
        index = SearchIndex(items, aliases)
        build = time.perf_counter() - t0
        p50, p99, worst = bench_search(index, questions, args.rounds)
        target = TARGET_P99_MS.get(size)
        verdict = "" if target is None else (" OK" if p99 <= target else f" OVER TARGET {target} ms")
        failed |= target is not None and p99 > target
        print(
            f"{size:>6} items: index build {build:.2f} s; search p50 {p50:.3f} ms, p99 {p99:.3f} ms, "
            f"max {worst:.3f} ms over {len(questions) * args.rounds} queries{verdict}"
        )
        if not args.no_import and size != len(catalogue):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "synthetic.xlsx"
                write_xlsx(items, path)
                print(f"{size:>6} items: import from XLSX {asyncio.run(bench_import(path)):.2f} s")
    if not args.no_import:
        for name in ("service_guides.xlsx", "service_guides.csv", "service_guides_gbk.csv"):
            print(
                f"   110 items: import {name:<24} {asyncio.run(bench_import(DATA_DIR / name)) * 1000:.0f} ms"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
