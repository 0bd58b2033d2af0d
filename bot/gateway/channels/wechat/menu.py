"""The custom menu (pushed with ``govbot wechat menu push``) and the intents its click keys and QR-code
scene keys stand for.  Edit ``menu.json`` to change both."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MENU_FILE = Path(__file__).with_name("menu.json")


@dataclass(frozen=True)
class MenuConfig:
    menu: dict
    click_intents: dict[str, str]
    scene_intents: dict[str, str]

    @classmethod
    def load(cls, path: Path = DEFAULT_MENU_FILE) -> MenuConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data["menu"], dict(data.get("click_intents", {})), dict(data.get("scene_intents", {})))

    def intent_for_click(self, key: str | None) -> str | None:
        return self.click_intents.get(key or "")

    def intent_for_scene(self, scene: str | None) -> str | None:
        return self.scene_intents.get((scene or "").strip())
