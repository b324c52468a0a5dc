"""The admin forms' size limits over real HTTP: an oversize form is refused, never echoed."""

from __future__ import annotations

import httpx
import pytest

from tests.web.test_admin import admin, browser_like, csrf_token  # noqa: F401 (fixtures by name)

NUMBER = "41793026999"


def search(client: httpx.Client, text: str, **files: tuple[str, bytes]) -> httpx.Response:
    """Post the search form (url-encoded, or multipart with files) with a valid CSRF token."""
    form = {"csrf_token": csrf_token(client.get("/admin/")), "q": text}
    return client.post("/admin/search", data=form, files=files or None)


def test_admin_search_refuses_an_oversize_form_without_echoing_it(
    admin: httpx.Client,  # noqa: F811 (the fixture imported above)
) -> None:
    huge = NUMBER * 100_000  # 1.1 MB
    response = search(admin, huge)
    assert response.status_code == 413, response.text[:300]
    assert "The form is too large" in response.text
    assert NUMBER * 10 not in response.text
    assert response.headers["Content-Type"].startswith("text/html")
    # The session survives: the next search works.
    assert search(admin, "nothing-like-this").status_code == 200


@pytest.mark.parametrize("size", [201, 8_000])
def test_admin_search_refuses_a_text_longer_than_the_box_takes(
    admin: httpx.Client,  # noqa: F811
    size: int,
) -> None:
    response = search(admin, "7" * size)
    assert response.status_code == 400, response.text[:300]
    assert "at most 200 characters" in response.text
    assert "7" * 201 not in response.text


def test_admin_forms_refuse_an_oversize_multipart_field(
    admin: httpx.Client,  # noqa: F811
) -> None:
    big_field = search(admin, "7" * 5_000, note=("note.txt", b"x"))
    assert big_field.status_code == 413, big_field.text[:300]
    big_file = search(admin, NUMBER, upload=("upload.csv", b"x" * 1_000_000))
    assert big_file.status_code == 413, big_file.text[:300]


def test_admin_login_refuses_an_oversize_form_also_without_a_length(
    browser_like: httpx.Client,  # noqa: F811
) -> None:
    token = csrf_token(browser_like.get("/admin/login"))
    body = f"csrf_token={token}&name=ana&password={'x' * 1_000_000}".encode()
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    sized = browser_like.post("/admin/login", content=body, headers=form_type)
    assert sized.status_code == 413, sized.text[:300]
    chunked = browser_like.post(
        "/admin/login", content=iter([body[:10_000], body[10_000:]]), headers=form_type
    )
    assert chunked.status_code == 413, chunked.text[:300]
    assert "x" * 100 not in sized.text + chunked.text


def test_admin_search_of_a_normal_text_still_works(
    admin: httpx.Client,  # noqa: F811
) -> None:
    response = search(admin, "+41 79 302 69 99")
    assert response.status_code == 200
    assert "Calls to +41793026999" in response.text
