"""Previews of values, computed by the worker that has them and stored in their tag (``"preview"``).

A preview is ``{"text": str}`` (one Python-like line of at most :data:`TEXT_LIMIT` characters) plus
optionally a ``"table"`` (the head of a DataFrame or Series, with its shape and dtypes) or an
``"image"`` (a PNG thumbnail of a Pillow image or a matplotlib figure). The server never unpickles:
it shows what the worker wrote here, after :func:`checked` made sure it is well formed and small.

:func:`compute` is the worker side: it never raises (a value whose ``repr`` fails simply has no
preview) and it bounds its work (``reprlib`` limits, the first rows of a table). NumPy, pandas,
Pillow and matplotlib are imported only when the value is one of theirs.
"""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import io
import itertools
import json
import math
import re
import reprlib
from typing import Any, Final

from coflux.models import JSON

TEXT_LIMIT: Final = 1000
"""Characters of a preview's text."""
TABLE_ROWS: Final = 10
TABLE_COLUMNS: Final = 20
CELL_LIMIT: Final = 100
"""Characters of a string in a table cell (the rest is cut with ``…``)."""
THUMBNAIL_SIZE: Final = 256
"""Pixels of a thumbnail's longer side, at most."""
IMAGE_BYTES: Final = 65_536
"""Bytes of a thumbnail's PNG, at most."""
TIMES: Final = "\u00d7"
"""The sign between the sides of a shape: ``DataFrame 1000\u00d73``, ``<PIL.Image 640\u00d7480 RGB>``."""
BYTES_SHOWN: Final = 100
"""Bytes shown in the preview of a ``bytes`` value."""

BUDGET: Final = 262_144
"""Characters of previews (as JSON) in one value: a list of 10,000 objects gets previews for as
many as fit (whole ones first, else their text alone), not 10,000 of them."""

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_B64_LIMIT: Final = 4 * ((IMAGE_BYTES + 2) // 3)


# -- the worker side ------------------------------------------------------------------------------


def compute(value: Any) -> dict[str, JSON] | None:
    """The preview of a value that travels as bytes (pickled, ``bytes``, an array, a frame), or
    None if it has none or computing it failed: a preview never makes a value fail."""
    try:
        preview = _compute(value)
    except Exception:
        return None
    return preview if preview is None else checked(preview)


def _compute(value: Any) -> dict[str, JSON] | None:
    if type(value) is bytes:
        shown = repr(value[:BYTES_SHOWN]) + ("…" if len(value) > BYTES_SHOWN else "")
        return {"text": f"{shown} ({len(value):,} bytes)"}
    package = type(value).__module__.partition(".")[0]
    if package == "numpy":
        return _array(value)
    if package == "pandas":
        return _pandas(value)
    if package in ("PIL", "matplotlib"):
        return _image(value, package)
    return {"text": one_line(_Repr().repr(value))}


class Budget:
    """The previews of the parts of one value, within :data:`BUDGET` characters in all."""

    def __init__(self, budget: int = BUDGET) -> None:
        self.left = budget

    def take(self, value: Any) -> dict[str, JSON] | None:
        """:func:`compute` of ``value`` if there is room left for it, else its text alone if there
        is room for that, else None (and nothing is computed once the budget is spent)."""
        if self.left <= 0:
            return None
        preview = compute(value)
        if preview is None:
            return None
        for candidate in (preview, {"text": preview["text"]}):
            size = len(json.dumps(candidate, ensure_ascii=False))
            if size <= self.left:
                self.left -= size
                return candidate
        self.left = 0
        return None


def one_line(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` on one line (line breaks and the indentation after them become a space, other
    control characters U+FFFD, so no terminal escape gets through), cut to ``limit`` characters."""
    text = _CONTROL.sub("\ufffd", re.sub(r"\s*[\r\n]\s*", " ", text.strip()).replace("\t", " "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Repr(reprlib.Repr):
    """``repr`` with bounds: long containers and strings are cut (``[1, 2, ...]``), nesting stops
    at some depth, and a dataclass shows its fields the same way (``Point(x=1, y=2)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 4
        self.maxtuple = self.maxlist = self.maxset = self.maxfrozenset = self.maxdeque = 20
        self.maxarray = 20
        self.maxdict = 20
        self.maxstring = 200
        self.maxlong = 100
        self.maxother = TEXT_LIMIT

    def repr1(self, x: Any, level: int) -> str:
        name = type(x).__qualname__
        fields = _fields(x)
        if fields is not None:
            if level <= 0:
                return f"{name}(...)"
            return f"{name}({', '.join(f'{f}={self.repr1(getattr(x, f), level - 1)}' for f in fields)})"
        container = _container(x)
        if container is not None:  # a subclass of dict, list...: as its base, bounded, with its name
            return f"{name}({getattr(self, f'repr_{container.__name__}')(x, level)})"
        return super().repr1(x, level)

    def repr_dict(self, x: Any, level: int) -> str:
        """As ``reprlib``'s, in the dict's own order (``reprlib`` sorts the keys; Python doesn't)."""
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        items = itertools.islice(x.items(), self.maxdict)
        pieces = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}" for k, v in items]
        return "{" + ", ".join(pieces) + (", ..." if len(x) > self.maxdict else "") + "}"

    def repr_instance(self, x: Any, level: int) -> str:
        """``repr(x)`` cut to the limit; an exception goes up (no preview rather than a made-up one)."""
        text = repr(x)
        return text if len(text) <= self.maxother else text[: self.maxother - 1] + "…"


def _fields(value: Any) -> list[str] | None:
    """The fields ``repr`` shows of a dataclass instance whose ``__repr__`` is the one ``@dataclass``
    wrote, or of a named tuple; None for anything else."""
    cls: Any = type(value)
    if isinstance(value, tuple) and getattr(cls.__repr__, "__code__", None) is _NAMEDTUPLE_REPR:
        return [str(f) for f in cls._fields]
    if not dataclasses.is_dataclass(cls) or isinstance(value, type):
        return None
    params = getattr(cls, "__dataclass_params__", None)
    if not getattr(params, "repr", False) or not hasattr(cls.__repr__, "__wrapped__"):
        return None
    return [f.name for f in dataclasses.fields(value) if f.repr]


_COLLECTIONS: Final = (collections.OrderedDict, collections.defaultdict, collections.Counter)
_NAMEDTUPLE_REPR: Final = collections.namedtuple("_", "a").__repr__.__code__  # the same in all of them


def _container(value: Any) -> type | None:
    """The builtin container a value subclasses, if its ``repr`` is that container's or one of the
    standard library's (``OrderedDict``, ``defaultdict``, ``Counter``)."""
    cls: Any = type(value)
    for base in (dict, list, tuple, set, frozenset):
        if isinstance(value, base) and cls is not base:
            known = {base.__repr__, *(c.__repr__ for c in _COLLECTIONS if issubclass(c, base))}
            return base if cls.__repr__ in known else None
    return None


def _scale(shape: Any) -> str:
    return TIMES.join(str(n) for n in shape) or "scalar"


def _array(value: Any) -> dict[str, JSON] | None:
    import numpy

    if not isinstance(value, numpy.ndarray):
        return {"text": one_line(_Repr().repr(value))}
    with numpy.printoptions(threshold=20, edgeitems=3, linewidth=10_000):
        shown = numpy.array2string(value, separator=", ", max_line_width=10_000)
    return {"text": one_line(f"ndarray {_scale(value.shape)} {value.dtype}: {shown}")}


def _pandas(value: Any) -> dict[str, JSON] | None:
    import pandas

    if isinstance(value, pandas.DataFrame):
        frame, columns = value, [str(c) for c in value.columns]
        dtypes = ", ".join(f"{name}: {dtype}" for name, dtype in zip(columns, value.dtypes, strict=True))
        text = f"DataFrame {_scale(value.shape)} ({dtypes})"
    elif isinstance(value, pandas.Series):
        name = "values" if value.name is None else str(value.name)
        frame, columns = value.to_frame(name=name), [name]
        label = "" if value.name is None else f" {json.dumps(str(value.name), ensure_ascii=False)}"
        text = f"Series{label} {len(value)} ({value.dtype})"
    else:
        return {"text": one_line(_Repr().repr(value))}
    return {"text": one_line(text), "table": _table(frame, columns)}


def _table(frame: Any, columns: list[str]) -> dict[str, JSON]:
    """The head of ``frame`` (named ``columns``); an index other than 0, 1, 2... first, as a column
    named after it."""
    import pandas

    head = frame.iloc[:TABLE_ROWS, :TABLE_COLUMNS]
    shown = columns[:TABLE_COLUMNS]
    rows: list[JSON] = [[_cell(v) for v in row] for row in head.itertuples(index=False, name=None)]
    dtypes: dict[str, JSON] = {c: str(d) for c, d in zip(shown, head.dtypes, strict=True)}
    index = frame.index
    plain = isinstance(index, pandas.RangeIndex) and index.start == 0 and index.step == 1
    if not plain and len(shown) < TABLE_COLUMNS:
        label = ", ".join(str(n) for n in index.names if n is not None) or "index"
        rows = [[_cell(key), *row] for key, row in zip(head.index, rows, strict=True)]
        shown, dtypes = [label, *shown], {label: str(index.dtype), **dtypes}
    return {"columns": list(shown), "rows": rows, "shape": list(frame.shape), "dtypes": dtypes}


def _cell(value: Any) -> JSON:
    """A table cell as a JSON scalar: numbers and booleans as they are (NaN and missing values as
    null), anything else as its text, cut."""
    item = value.item() if hasattr(value, "item") and callable(value.item) else value
    if item is None or type(item) in (bool, int, str):
        return item if not isinstance(item, str) else one_line(item, CELL_LIMIT)
    if type(item) is float:
        return item if math.isfinite(item) else None
    import pandas  # a table is only made of a frame: pandas is there
    from pandas.api.types import is_scalar

    if is_scalar(item) and pandas.isna(item):  # NaT, pd.NA
        return None
    return one_line(str(item), CELL_LIMIT)


def _image(value: Any, package: str) -> dict[str, JSON] | None:
    if package == "PIL":
        from PIL import Image

        if not isinstance(value, Image.Image):
            return {"text": one_line(_Repr().repr(value))}
        return _thumbnail(value, f"<PIL.Image {value.width}{TIMES}{value.height} {value.mode}>")
    from matplotlib.figure import Figure

    if not isinstance(value, Figure):
        return {"text": one_line(_Repr().repr(value))}
    width, height = value.get_size_inches()
    text = f"<Figure {round(width * value.dpi)}{TIMES}{round(height * value.dpi)}>"
    buffer = io.BytesIO()
    value.savefig(buffer, format="png", dpi=THUMBNAIL_SIZE / max(width, height, 1e-6))
    from PIL import Image

    return _thumbnail(Image.open(buffer), text)


def _thumbnail(image: Any, text: str) -> dict[str, JSON]:
    """``text`` and a PNG of ``image`` no larger than the limits (smaller, then none, if need be).
    The image is resized, never copied whole; one Pillow can't resize or save has its text alone."""
    try:
        return {"text": text, "image": _png(image)}
    except (ValueError, OSError, TypeError):
        return {"text": text}


def _png(image: Any) -> dict[str, JSON]:
    """A PNG of ``image`` within the limits, as a preview's ``image``; ValueError if none fits."""
    for side in (THUMBNAIL_SIZE, THUMBNAIL_SIZE // 2, THUMBNAIL_SIZE // 4):
        scale = min(1.0, side / max(image.width, image.height, 1))
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        small = image.resize(size, reducing_gap=3.0) if scale < 1 else image
        if small.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
            small = small.convert("RGBA" if small.mode in ("CMYK", "YCbCr", "LAB", "HSV") else "L")
        buffer = io.BytesIO()
        small.save(buffer, format="PNG", optimize=True)
        data = buffer.getvalue()
        if len(data) <= IMAGE_BYTES:
            return {
                "media_type": "image/png",
                "b64": base64.b64encode(data).decode("ascii"),
                "width": small.width,
                "height": small.height,
            }
    raise ValueError("no thumbnail fits the limit")


# -- both sides: checking -------------------------------------------------------------------------


def checked(preview: Any) -> dict[str, JSON] | None:
    """``preview`` if it is a well-formed, small preview (as a worker should write it), else None:
    a malformed or oversized preview is dropped, never an error (the value itself is kept)."""
    if not isinstance(preview, dict) or not _short_text(preview.get("text"), TEXT_LIMIT):
        return None
    if _CONTROL.search(preview["text"]):  # one line, and nothing a terminal would act on
        return None
    if set(preview) - {"text", "table", "image"}:
        return None
    if "table" in preview and not _valid_table(preview["table"]):
        return None
    if "image" in preview and not _valid_image(preview["image"]):
        return None
    return preview


def _short_text(value: Any, limit: int) -> bool:
    return isinstance(value, str) and len(value) <= limit


def _count(value: Any, largest: int | None = None) -> bool:
    return type(value) is int and value >= 0 and (largest is None or value <= largest)


def _valid_table(table: Any) -> bool:
    if not isinstance(table, dict):
        return False
    columns, rows, shape, dtypes = (table.get(k) for k in ("columns", "rows", "shape", "dtypes"))
    if not isinstance(columns, list) or len(columns) > TABLE_COLUMNS:
        return False
    if not all(_short_text(c, CELL_LIMIT) for c in columns):
        return False
    if not isinstance(rows, list) or len(rows) > TABLE_ROWS:
        return False
    if not all(isinstance(r, list) and len(r) == len(columns) and all(map(_scalar, r)) for r in rows):
        return False
    if not isinstance(shape, list) or len(shape) != 2 or not all(_count(n) for n in shape):
        return False
    return (
        isinstance(dtypes, dict)
        and len(dtypes) <= TABLE_COLUMNS
        and all(_short_text(k, CELL_LIMIT) and _short_text(v, CELL_LIMIT) for k, v in dtypes.items())
    )


def _scalar(value: Any) -> bool:
    if value is None or type(value) in (bool, int):
        return True
    if type(value) is float:
        return math.isfinite(value)
    return _short_text(value, CELL_LIMIT)


def _valid_image(image: Any) -> bool:
    if not isinstance(image, dict) or image.get("media_type") != "image/png":
        return False
    if not all(_count(image.get(k), THUMBNAIL_SIZE) and image.get(k) for k in ("width", "height")):
        return False
    b64 = image.get("b64")
    if not isinstance(b64, str) or len(b64) > _B64_LIMIT:
        return False
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    return data.startswith(_PNG_SIGNATURE) and len(data) <= IMAGE_BYTES
