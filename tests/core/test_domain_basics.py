"""Office hours on the Chinese calendar, text splitting, text normalisation, training fingerprint."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.core.config import Settings
from bot.core.office_hours import OfficeHours
from bot.core.textnorm import normalize
from bot.gateway.channels.textsplit import pack, split_by_bytes, utf8_len
from bot.gateway.launcher import model_is_current, training_fingerprint

TZ = ZoneInfo("Asia/Shanghai")
HOURS = OfficeHours.parse("mon-fri 08:30-12:00,14:30-17:30")


@pytest.mark.parametrize(
    ("label", "when", "open_"),
    [
        ("Wednesday morning", datetime(2026, 11, 25, 9, 0), True),
        ("Wednesday lunch break", datetime(2026, 11, 25, 12, 30), False),
        ("Wednesday afternoon", datetime(2026, 11, 25, 15, 0), True),
        ("Wednesday evening", datetime(2026, 11, 25, 18, 0), False),
        ("Saturday", datetime(2026, 11, 28, 9, 0), False),
        ("National Day holiday (Thursday)", datetime(2026, 10, 1, 9, 0), False),
        ("Spring Festival holiday (Tuesday)", datetime(2026, 2, 17, 9, 0), False),
        ("调休 Saturday before Spring Festival is a workday", datetime(2026, 2, 14, 9, 0), True),
        ("调休 Sunday before National Day is a workday", datetime(2026, 9, 20, 9, 0), True),
        ("opening minute", datetime(2026, 11, 25, 8, 30), True),
        ("closing minute", datetime(2026, 11, 25, 17, 30), False),
    ],
)
def test_office_hours(label: str, when: datetime, open_: bool) -> None:
    assert HOURS.is_open(when.replace(tzinfo=TZ)) is open_, label


def test_office_hours_use_the_center_time_zone() -> None:
    utc_morning = datetime(2026, 11, 25, 1, 0, tzinfo=ZoneInfo("UTC"))  # 09:00 in Beijing
    assert HOURS.is_open(utc_morning)


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("短", 2048),
        ("a" * 5000, 2048),
        ("汉" * 5000, 2048),
        ("材料一；材料二。\n" * 400, 2048),
        ("😀" * 1000, 2048),
        ("x" * 69 + "汉", 70),
    ],
)
def test_split_by_bytes_keeps_every_character(text: str, limit: int) -> None:
    parts = split_by_bytes(text, limit)
    assert all(utf8_len(p) <= limit for p in parts)
    assert "".join(parts).replace("\n", "") == text.strip("\n").replace("\n", "")


def test_split_prefers_line_breaks() -> None:
    lines = [f"{i}. 材料{i}" + "说明" * 30 for i in range(40)]
    parts = split_by_bytes("\n".join(lines), 2048)
    assert all(p.split("\n")[0].split(".")[0].isdigit() for p in parts)


def test_pack_joins_short_messages_and_keeps_long_ones_whole() -> None:
    assert pack(["你好", "请问"], 2048) == ["你好\n\n请问"]
    long = "汉" * 1000
    packed = pack([long, "尾"], 2048)
    assert "".join(packed).replace("\n", "").count("汉") == 1000 and packed[-1].endswith("尾")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("營業執照怎麼辦", "营业执照怎么办"),
        ("受理号：２０２６１１２５", "受理号:20261125"),
        ("  身份证  \n 补办 ", "身份证 补办"),
        ("", ""),
    ],
)
def test_normalize(raw: str, clean: str) -> None:
    assert normalize(raw) == clean


def test_training_fingerprint_tracks_training_inputs(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "jieba_dict").mkdir()
    (tmp_path / "config.yml").write_text("a")
    (tmp_path / "domain.yml").write_text("b")
    (tmp_path / "data" / "nlu.yml").write_text("c")
    (tmp_path / "endpoints.yml").write_text("not a training input")
    first = training_fingerprint(tmp_path)
    (tmp_path / "endpoints.yml").write_text("changed")
    assert training_fingerprint(tmp_path) == first
    (tmp_path / "data" / "nlu.yml").write_text("c2")
    assert training_fingerprint(tmp_path) != first
    assert not model_is_current(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "govbot.tar.gz").write_bytes(b"m")
    (tmp_path / "models" / "fingerprint.txt").write_text(training_fingerprint(tmp_path))
    assert model_is_current(tmp_path)


def test_calendar_overrides_cover_years_the_package_lacks(tmp_path: Path) -> None:
    from datetime import date

    path = tmp_path / "calendar.txt"
    path.write_text("# 2027 schedule\n2027-01-01 holiday\n2027-02-06 workday  # 调休\n", encoding="utf-8")
    settings = Settings.from_env({"CENTER_CALENDAR_FILE": str(path)})
    hours = OfficeHours.parse("mon-fri 08:30-12:00,14:30-17:30", calendar_file=settings.calendar_file)
    assert hours.is_working_day(date(2027, 1, 1)) is False  # a Friday, but 元旦
    assert hours.is_working_day(date(2027, 2, 6)) is True  # a Saturday made a workday
    assert hours.is_working_day(date(2027, 1, 4)) is True  # plain week otherwise
    assert hours.is_working_day(date(2026, 10, 1)) is False  # the package still answers for 2026
    path.write_text("2027-01-01 maybe\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected"):
        OfficeHours.parse("mon-fri 08:30-12:00", calendar_file=str(path))
