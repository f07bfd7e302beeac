"""The widgets' views rendered in node, over the minimal DOM and anywidget model of
``tests/notebook/dom.mjs``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from coflux.notebook.widgets import view_source

NODE = shutil.which("node")
DOM = Path(__file__).resolve().parents[1] / "notebook" / "dom.mjs"


def render_in_node(tmp_path: Path, script: str, state: dict[str, Any], view: str, page: str = "") -> Any:
    """Run ``script`` (an async body with ``dom``, ``state`` and ``viewPath`` in scope) in node and
    return what it returns. ``page`` runs first: the Jupyter page's globals (``document.body``,
    ``location``) a test wants the view to see."""
    module = tmp_path / view.replace(".js", ".mjs")
    module.write_text(view_source(view), encoding="utf-8")
    (tmp_path / "state.json").write_text(json.dumps(state))
    driver = tmp_path / "driver.mjs"
    driver.write_text(
        f"import * as dom from {json.dumps(DOM.as_uri())};\n"
        "import { readFileSync } from 'node:fs';\n"
        f"const state = JSON.parse(readFileSync({json.dumps(str(tmp_path / 'state.json'))}, 'utf8'));\n"
        f"const viewPath = {json.dumps(module.as_uri())};\n"
        f"{page}\n"
        f"const out = await (async () => {{\n{script}\n}})();\n"
        "console.log(JSON.stringify(out));\n"
    )
    assert NODE is not None, "node is not installed"
    done = subprocess.run([NODE, str(driver)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
