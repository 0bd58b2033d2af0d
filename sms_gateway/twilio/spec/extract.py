"""Cut the Messages resource out of Twilio's full OpenAPI file (``twilio_api_v2010.json``, about 1.9 MB)::

    python -m sms_gateway.twilio.spec.extract /path/to/twilio_api_v2010.json

Keeps ``openapi``, ``info``, ``servers``, ``security``, the security schemes, the two Messages paths
(``Messages.json`` and ``Messages/{Sid}.json``) and every component schema they reference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sms_gateway.twilio.spec import SPEC_PATH

PATHS = (
    "/2010-04-01/Accounts/{AccountSid}/Messages.json",
    "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json",
)


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            out.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def extract(full: dict[str, Any]) -> dict[str, Any]:
    paths = {p: full["paths"][p] for p in PATHS}
    schemas = full["components"]["schemas"]
    wanted: set[str] = set()
    _refs(paths, wanted)
    pending = list(wanted)
    while pending:
        name = pending.pop()
        found: set[str] = set()
        _refs(schemas[name], found)
        for extra in found - wanted:
            wanted.add(extra)
            pending.append(extra)
    return {
        "openapi": full["openapi"],
        "info": full["info"],
        "servers": full.get("servers", []),
        "security": full.get("security", []),
        "components": {
            "securitySchemes": full["components"].get("securitySchemes", {}),
            "schemas": {name: schemas[name] for name in sorted(wanted)},
        },
        "paths": paths,
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0])
    target = Path(args[1]) if len(args) > 1 else SPEC_PATH
    part = extract(json.loads(source.read_text(encoding="utf-8")))
    target.write_text(json.dumps(part, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{target}: {target.stat().st_size} bytes from {source} ({source.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
