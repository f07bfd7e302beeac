"""Where the Coflux API may be under a URL a user typed, and which answers are Coflux's."""

from __future__ import annotations

import pytest

from coflux.address import Answer, candidates, suggested_url

ERROR = b'{"error": {"code": "unauthorized", "message": "authentication required"}}'


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://h:8888", ["http://h:8888/coflux"]),
        ("http://h:8888/", ["http://h:8888/coflux"]),
        ("http://h:8888/lab", ["http://h:8888/lab/coflux", "http://h:8888/coflux"]),
        (
            "http://h:8888/user/ana/lab/tree/x.ipynb?token=t#cell",
            [
                "http://h:8888/user/ana/lab/tree/x.ipynb/coflux",
                "http://h:8888/user/ana/lab/tree/coflux",
                "http://h:8888/user/ana/lab/coflux",
                "http://h:8888/user/ana/coflux",
                "http://h:8888/user/coflux",
                "http://h:8888/coflux",
            ],
        ),
        (
            "http://h:8888/coflux/api",
            ["http://h:8888/coflux/api/coflux", "http://h:8888/coflux/coflux", "http://h:8888/coflux"],
        ),
    ],
)
def test_candidates_are_nearest_first_and_never_the_url_itself(url: str, expected: list[str]) -> None:
    assert candidates(url) == expected


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://h:8888/", "http://h:8888/coflux"),
        ("http://h:8888/lab/tree/x.ipynb", "http://h:8888/coflux"),
        ("http://h:8888/user/ana/lab", "http://h:8888/user/ana/coflux"),
        ("http://h:8000/base", "http://h:8000/base/coflux"),
        ("https://h/coflux/api?token=t", "https://h/coflux"),
    ],
)
def test_the_url_suggested_ends_the_base_url_before_jupyters_pages(url: str, expected: str) -> None:
    assert suggested_url(url) == expected


@pytest.mark.parametrize(
    "answer, foreign, from_coflux, said",
    [
        (
            Answer(404, "text/html; charset=UTF-8", b"<!DOCTYPE HTML><html>"),
            True,
            False,
            "HTTP 404 with an HTML page",
        ),
        (Answer(200, "text/html", b"<!doctype html>"), True, False, "HTTP 200 with an HTML page"),
        (Answer(200, "", b"  <html><body>hi"), True, False, "HTTP 200 with an HTML page"),
        (
            Answer(404, "application/json", b'{"message": "Not Found"}'),
            True,
            False,
            "HTTP 404 with JSON that is not Coflux's",
        ),
        (Answer(401, "application/json", ERROR), False, True, "HTTP 401 with Coflux's error 'unauthorized'"),
        (Answer(404, "text/plain", b""), True, False, "HTTP 404 with an empty body"),
        (Answer(200, "application/json", b'{"projects": []}'), False, True, "HTTP 200 with JSON"),
        (
            Answer(200, "application/octet-stream", b"<!doctype html> a blob"),
            False,
            False,
            "HTTP 200 with application/octet-stream",
        ),
        (Answer(502, "text/html", b"<html>Bad Gateway"), False, False, "HTTP 502 with an HTML page"),
        (
            Answer(
                404, "application/json", b'{"error": {"code": "not_found", "message": "no such endpoint"}}'
            ),
            False,  # Coflux's own answer: a wrong path under the API, not a wrong server
            False,  # but not where its api/projects is
            "HTTP 404 with Coflux's error 'not_found'",
        ),
        (Answer(503, "application/json", ERROR), False, True, "HTTP 503 with Coflux's error 'unauthorized'"),
    ],
)
def test_answers_that_are_not_coflux(answer: Answer, foreign: bool, from_coflux: bool, said: str) -> None:
    assert (answer.foreign, answer.from_coflux, answer.describe()) == (foreign, from_coflux, said)
