"""``govbot kb …`` sub-commands.

``register(subparsers, wrap=None)`` adds the ``kb`` command with its sub-commands to an argparse
sub-parser collection.  Every sub-command stores its handler in ``args.kb_handler``; a handler is

    async def handler(args: argparse.Namespace, sessionmaker: async_sessionmaker[AsyncSession]) -> int

and returns the process exit code (0 = success, 1 = the file was rejected / nothing found, 2 = usage
error).  When ``wrap`` is given (``bot/gateway/cli.py`` passes one that migrates the database named by
``DATABASE_URL``, creates the sessionmaker and runs the coroutine), ``args.func`` is set to
``wrap(handler)`` as well.  Output is printed to stdout (Chinese, for staff).

    govbot kb import PATH [--dry-run]     catalogue from .xlsx / .csv (UTF-8, UTF-8 BOM, GBK/GB18030)
    govbot kb aliases PATH [--dry-run]    alias TSV: colloquial name<TAB>事项编码
    govbot kb export PATH.xlsx            catalogue back to Excel, in the import format
    govbot kb unanswered [--limit N]      unanswered / low-confidence questions, newest first
    govbot kb search QUERY                ranked items and the answer the bot would give
    govbot kb nlu-examples PATH           the NLU's service-question examples from the catalogue (then train)

``ensure_sample_loaded(sessionmaker)`` loads the shipped sample catalogue and aliases into an empty
catalogue (called on first ``make run``).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from knowledge_base.importer import (
    ImportReport,
    ensure_sample_loaded,
    export_catalogue,
    import_aliases,
    import_catalogue,
    load_aliases,
    load_items,
)
from knowledge_base.nlu_examples import write_examples
from knowledge_base.service import KnowledgeBase

Handler = Callable[[argparse.Namespace, async_sessionmaker[AsyncSession]], Awaitable[int]]
Wrap = Callable[[Handler], Callable[[argparse.Namespace], int]]

__all__ = ["Handler", "ensure_sample_loaded", "register"]


def _print_report(report: ImportReport) -> int:
    print(report.summary())
    return 0 if report.ok else 1


async def cmd_import(args: argparse.Namespace, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    return _print_report(await import_catalogue(sessionmaker, args.path, dry_run=args.dry_run))


async def cmd_aliases(args: argparse.Namespace, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    return _print_report(await import_aliases(sessionmaker, args.path, dry_run=args.dry_run))


async def cmd_export(args: argparse.Namespace, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    path = Path(args.path)
    if path.suffix.lower() != ".xlsx":
        print("导出文件名须以 .xlsx 结尾")
        return 2
    n = await export_catalogue(sessionmaker, path)
    print(f"已导出 {n} 个事项到 {path}")
    return 0


async def cmd_unanswered(args: argparse.Namespace, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    rows = await KnowledgeBase(sessionmaker).unanswered(limit=args.limit)
    if not rows:
        print("暂无未解答的问题。")
        return 0
    for r in rows:
        when = r.created_at.strftime("%Y-%m-%d %H:%M:%S")
        kind = "未找到" if r.kind == "not_found" else "待选择"
        guess = f"{r.best_name}（{r.best_code}，{r.score:.2f}）" if r.best_code else "无"
        print(f"{when}\t{r.channel}\t{kind}\t{r.question}\t最接近：{guess}")
    return 0


async def cmd_search(args: argparse.Namespace, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    kb = KnowledgeBase(sessionmaker)
    query = " ".join(args.query)
    hits = await kb.search(query, limit=args.limit)
    if not hits:
        print("没有匹配的事项。")
    for i, h in enumerate(hits, start=1):
        print(f"{i:>2}. {h.score:.3f}  {h.code}  {h.name}（{h.department}）")
    ans = await kb.answer(query, channel=args.channel)
    kind = {"answer": "直接回答", "choices": "请用户选择", "not_found": "未找到"}[ans.kind]
    print(f"\n机器人回复（{kind}，方面：{ans.aspect or '概览'}）：")
    for i, msg in enumerate(ans.messages, start=1):
        if len(ans.messages) > 1:
            print(f"--- 第{i}条 ---")
        print(msg)
    return 0 if hits else 1


async def cmd_nlu_examples(args: argparse.Namespace, sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    out = Path(args.path)
    async with sessionmaker() as session:
        items, aliases = await load_items(session), await load_aliases(session)
    if not items:
        print("目录为空：请先导入办事指南目录。")
        return 1
    try:
        n = await asyncio.to_thread(write_examples, out, items, aliases)
    except ValueError as exc:
        print(exc)
        return 2
    print(f"已写入 {n} 条示例到 {out}；请运行 govbot train 重新训练。")
    return 0


# The permission each sub-command needs (the gateway's wrapper checks it for the signed-in person).
PERMISSIONS = {"import": "kb.import", "aliases": "kb.import", "export": "kb.read", "unanswered": "kb.edit",
               "search": "kb.read", "nlu-examples": "kb.import"}  # fmt: skip


def register(subparsers: argparse._SubParsersAction, wrap: Wrap | None = None) -> None:
    """Add ``kb`` and its sub-commands; each sets ``args.kb_handler`` (and ``args.func`` when ``wrap``)."""

    def handle(p: argparse.ArgumentParser, handler: Handler) -> None:
        name = p.prog.rsplit(" ", 1)[-1]
        p.set_defaults(kb_handler=handler, permission=PERMISSIONS[name])
        if wrap is not None:
            p.set_defaults(func=wrap(handler))

    kb = subparsers.add_parser("kb", help="办事指南知识库：导入、导出、检索、未解答问题")
    sub = kb.add_subparsers(
        dest="kb_command", required=True, metavar="{import,aliases,export,unanswered,search,nlu-examples}"
    )

    p = sub.add_parser("import", help="导入办事指南目录（.xlsx/.csv）")
    p.add_argument("path", help="目录文件路径")
    p.add_argument("--dry-run", action="store_true", help="只检查并显示将发生的变化，不写入")
    handle(p, cmd_import)

    p = sub.add_parser("aliases", help="导入别名表（TSV：别名<Tab>事项编码）")
    p.add_argument("path", help="别名文件路径")
    p.add_argument("--dry-run", action="store_true", help="只检查并显示将发生的变化，不写入")
    handle(p, cmd_aliases)

    p = sub.add_parser("export", help="导出目录为 Excel（与导入格式相同）")
    p.add_argument("path", help="输出文件路径（.xlsx）")
    handle(p, cmd_export)

    p = sub.add_parser("unanswered", help="列出未解答/低置信度的问题")
    p.add_argument("--limit", type=int, default=50, help="最多显示条数（默认50）")
    handle(p, cmd_unanswered)

    p = sub.add_parser("search", help="测试一个问题：排序结果和机器人的回复")
    p.add_argument("query", nargs="+", help="问题")
    p.add_argument("--limit", type=int, default=5, help="显示前N个结果（默认5）")
    p.add_argument("--channel", choices=["wechat", "sms"], default="wechat", help="回复渠道格式")
    handle(p, cmd_search)

    p = sub.add_parser("nlu-examples", help="由目录生成 NLU 的办事咨询示例（之后运行 govbot train）")
    p.add_argument("path", help="输出文件（通常为 dialogues/data/nlu_catalogue.yml）")
    handle(p, cmd_nlu_examples)
