"""NumPy arrays and pandas DataFrames and Series as tagged JSON: ``.npy`` and Parquet bytes.

:mod:`coflux.serialization` carries these bytes like a pickle's (base64 below the inline limit, a
blob above); the tag also holds what a reader wants to see without decoding them: the shape, the
dtype or the columns' dtypes. That lets the server describe the value without NumPy or pandas.

NumPy, pandas and pyarrow are imported only once a value is one of theirs, so the core imports
without them. A value these formats would not bring back as it was (an object array, a subclass, a
frame with non-string column names or object columns holding anything but strings) returns None
from :func:`encode` and is pickled as before; so is every frame when pyarrow isn't installed.
"""

from __future__ import annotations

import importlib.util
import io
import json
from typing import Any, Final

from coflux.errors import BadRequest
from coflux.models import JSON

TAGS: Final = ("ndarray", "dataframe", "series")
_FORMATS: Final = {"ndarray": "npy", "dataframe": "parquet", "series": "parquet"}
_SERIES_COLUMN: Final = "values"


# -- encoding -------------------------------------------------------------------------------------


def encode(value: Any) -> tuple[str, dict[str, JSON], bytes] | None:
    """The tag, the descriptive fields and the bytes of an array, frame or series; None for
    anything else (including one these formats can't carry exactly), which is then pickled."""
    package = type(value).__module__.partition(".")[0]
    if package == "numpy":
        return _encode_array(value)
    if package == "pandas" and importlib.util.find_spec("pyarrow") is not None:
        return _encode_pandas(value)
    return None


def _encode_array(value: Any) -> tuple[str, dict[str, JSON], bytes] | None:
    import numpy

    if type(value) is not numpy.ndarray or value.dtype.hasobject:
        return None
    buffer = io.BytesIO()
    numpy.save(buffer, value, allow_pickle=False)
    fields: dict[str, JSON] = {"format": "npy", "shape": list(value.shape), "dtype": str(value.dtype)}
    return "ndarray", fields, buffer.getvalue()


def _encode_pandas(value: Any) -> tuple[str, dict[str, JSON], bytes] | None:
    import pandas

    if type(value) is pandas.Series:
        if not (value.name is None or type(value.name) is str):
            return None
        frame = value.to_frame(name=_SERIES_COLUMN)
        fields: dict[str, JSON] = {"format": "parquet", "shape": [len(value)], "dtype": str(value.dtype)}
        fields["name"] = value.name
        tag = "series"
    elif type(value) is pandas.DataFrame:
        if not all(type(column) is str for column in value.columns) or not value.columns.is_unique:
            return None
        frame = value
        columns: dict[str, JSON] = {column: str(dtype) for column, dtype in value.dtypes.items()}
        fields = {"format": "parquet", "shape": list(value.shape), "columns": columns}
        tag = "dataframe"
    else:
        return None
    data = _parquet(frame)
    return None if data is None else (tag, fields, data)


def _parquet(frame: Any) -> bytes | None:
    """The frame as Parquet, or None if something wouldn't come back as it was: a name that isn't a
    string (Parquet keeps it as one), an index's frequency, or an object column or index level
    holding anything but strings, or a missing value (it comes back as None, whatever it was)."""
    from pandas.api.types import infer_dtype

    index = frame.index
    names = [*index.names, *frame.columns.names]
    if not all(name is None or type(name) is str for name in names) or getattr(index, "freq", None):
        return None
    levels = [index.get_level_values(i) for i in range(index.nlevels)]
    for values in [*levels, *(frame[column] for column in frame.columns)]:
        if values.dtype == object and (infer_dtype(values, skipna=False) not in ("string", "empty")):
            return None
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, engine="pyarrow")
    except (TypeError, ValueError, NotImplementedError, ImportError):
        return None  # pyarrow refused a type; pickling keeps it (pyarrow's errors subclass these)
    return buffer.getvalue()


# -- checking and describing ----------------------------------------------------------------------


def check(data: dict[str, JSON], tag: str) -> None:
    """Raise BadRequest unless ``data`` has the descriptive fields of a ``tag`` value."""
    if data.get("format") != _FORMATS[tag]:
        raise BadRequest(f"malformed tagged {tag}: 'format' must be {_FORMATS[tag]!r}")
    shape = data.get("shape")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise BadRequest(f"malformed tagged {tag}: 'shape' must be a list of non-negative integers")
    if tag == "dataframe":
        columns = data.get("columns")
        if not isinstance(columns, dict) or not all(isinstance(d, str) for d in columns.values()):
            raise BadRequest("malformed tagged dataframe: 'columns' must map names to dtype strings")
        return
    if not isinstance(data.get("dtype"), str):
        raise BadRequest(f"malformed tagged {tag}: 'dtype' must be a string")
    if tag == "series" and not (data.get("name") is None or isinstance(data.get("name"), str)):
        raise BadRequest("malformed tagged series: 'name' must be a string or null")


def describe(data: dict[str, JSON], tag: str, size: int) -> JSON:
    """``{"type": tag, "shape", "dtype" | "columns" (and a series' "name"), "size"}``, read from the
    tag alone (a checked one)."""
    fields = ("shape", "columns") if tag == "dataframe" else ("shape", "dtype", "name")
    described: dict[str, JSON] = {"type": tag}
    described.update((key, data[key]) for key in fields if key in data)
    described["size"] = size
    return described


def summary(data: dict[str, JSON], tag: str) -> str:
    """One line for people, from a checked tag alone: ``ndarray float64 (3, 4)``,
    ``DataFrame (2, 2) a: int64, b: str``, ``Series "price" float64 (2,)``."""
    shape = tuple(data["shape"]) if isinstance(data["shape"], list) else ()
    if tag == "ndarray":
        return f"ndarray {data['dtype']} {shape}"
    if tag == "series":
        name = "" if data.get("name") is None else f"{json.dumps(data['name'], ensure_ascii=False)} "
        return f"Series {name}{data['dtype']} {shape}"
    columns = data["columns"] if isinstance(data["columns"], dict) else {}
    return f"DataFrame {shape} " + ", ".join(f"{name}: {dtype}" for name, dtype in columns.items())


# -- decoding -------------------------------------------------------------------------------------


def decode(data: dict[str, JSON], tag: str, raw: bytes) -> Any:
    """The array, frame or series of a checked tag's bytes. Unpickles nothing: ``.npy`` is read
    with ``allow_pickle=False``, Parquet by pyarrow."""
    try:
        if tag == "ndarray":
            import numpy

            return numpy.load(io.BytesIO(raw), allow_pickle=False)
        import pandas

        frame = _objects_restored(pandas.read_parquet(io.BytesIO(raw), engine="pyarrow"), raw)
    except ImportError as err:
        raise BadRequest(f"decoding a {tag} needs {err.name or 'its library'} installed") from err
    except (ValueError, OSError) as err:
        raise BadRequest(f"malformed {_FORMATS[tag]} bytes in a tagged {tag}: {err}") from err
    if tag == "dataframe":
        return frame
    return frame[_SERIES_COLUMN].rename(data.get("name"))


def _objects_restored(frame: Any, raw: bytes) -> Any:
    """The frame with the object dtype back on the string columns and index levels that had it
    (pandas 3 reads Parquet strings as its ``str`` dtype), as the file's pandas metadata says."""
    import pandas
    import pyarrow.parquet

    metadata = pyarrow.parquet.read_schema(io.BytesIO(raw)).pandas_metadata or {}
    objects = {c.get("field_name") for c in metadata.get("columns", []) if c.get("numpy_type") == "object"}
    for column in frame.columns:
        if column in objects and frame[column].dtype != object:
            frame[column] = frame[column].astype(object)
    fields = metadata.get("index_columns", [])
    if len(fields) != frame.index.nlevels or not objects.intersection(
        f for f in fields if isinstance(f, str)
    ):
        return frame
    levels = [frame.index.get_level_values(i) for i in range(frame.index.nlevels)]
    fixed = [
        level.astype(object) if field in objects else level
        for field, level in zip(fields, levels, strict=True)
    ]
    frame.index = fixed[0] if len(fixed) == 1 else pandas.MultiIndex.from_arrays(fixed)
    return frame
