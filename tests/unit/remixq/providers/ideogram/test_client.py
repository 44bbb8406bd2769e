"""The Ideogram client against the real simulator served over HTTP: the multipart body and its
header as sent on the wire, the answer read, and every failure mapped onto its class."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
import requests
from werkzeug.wrappers import Request

from remixq.providers.errors import (
    AnswerLost,
    BadRequest,
    ConnectionFailed,
    Forbidden,
    PermanentError,
    RateLimited,
    SafetyRejected,
    ServerError,
    TransientError,
    Unauthorized,
)
from remixq.providers.ideogram import IdeogramClient, RemixAnswer, build_request, parse_request
from remixq.url_policy import UrlPolicy
from tests.support.ideogram_requests import PNG, WEBP, request
from tests.support.images import png_bytes
from tests.support.simulator import LiveSimulator

KEY = "ideo-secret-key-0123456789"
MakeLive = Callable[..., LiveSimulator]


def stored(**changes: Any) -> dict[str, Any]:
    """A request as a job stores it (validated, then built)."""
    return build_request(parse_request(request(**changes)))


def client_for(
    live_url: str, *, key: str = KEY, timeout: float = 10.0, sent: list[Any] | None = None
) -> IdeogramClient:
    session = requests.Session()
    if sent is not None:  # every request as it went on the wire
        session.hooks["response"].append(lambda r, *_a, **_k: sent.append(r.request))
    return IdeogramClient(base_url=live_url, api_key=key, timeout=timeout, session=session)


def stats(live: LiveSimulator) -> dict[str, Any]:
    answer = requests.get(f"{live.url}/_control/stats", timeout=5)
    return dict(answer.json())


def parsed_form(prepared: requests.PreparedRequest) -> Request:
    body = prepared.body
    assert isinstance(body, bytes)
    return Request.from_values(
        input_stream=io.BytesIO(body),
        content_length=len(body),
        content_type=prepared.headers["Content-Type"],
        method="POST",
    )


def test_a_remix_sends_the_form_and_reads_the_images(make_live: MakeLive) -> None:
    live = make_live()
    sent: list[requests.PreparedRequest] = []
    request_ = stored(
        num_images=3,
        seed=41,
        aspect_ratio="16x9",
        rendering_speed="TURBO",
        color_palette={"members": [{"color_hex": "#1A2B3C", "color_weight": 0.5}]},
        style_codes=["1A2B3C4D", "DEADBEEF"],
        character_reference_images=[PNG],
        character_reference_images_mask=[WEBP],
    )
    answer = client_for(live.url, sent=sent).remix(request_)

    assert isinstance(answer, RemixAnswer) and answer.created
    assert [item.seed for item in answer.items] == [41, 42, 43]
    assert {item.resolution for item in answer.items} == {"1312x736"}
    assert all(item.is_image_safe and item.url for item in answer.items)
    assert all(item.prompt == "A seaside ticket booth" for item in answer.items)
    image = requests.get(str(answer.items[0].url), timeout=5)
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")

    (wire,) = sent
    assert wire.url == f"{live.url}/v1/ideogram-v3/remix"
    assert wire.headers["Api-Key"] == KEY
    assert wire.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    form = parsed_form(wire)
    assert form.form.to_dict(flat=False) == {
        "prompt": ["A seaside ticket booth"],
        "num_images": ["3"],
        "seed": ["41"],
        "aspect_ratio": ["16x9"],
        "rendering_speed": ["TURBO"],
        "color_palette": ['{"members":[{"color_hex":"#1A2B3C","color_weight":0.5}]}'],
        "style_codes": ["1A2B3C4D", "DEADBEEF"],
    }
    files = {name: form.files.getlist(name) for name in form.files}
    assert [f.read() for f in files["image"]] == [png_bytes()]
    assert [f.mimetype for f in files["character_reference_images"]] == ["image/png"]
    assert [f.mimetype for f in files["character_reference_images_mask"]] == ["image/webp"]
    figures = stats(live)["providers"]["ideogram"]
    assert figures == {"calls": 1, "charged": 1, "images": 3, "unsafe": 0, "cost": "0.0900"}


def test_an_https_image_is_fetched_and_sent_as_a_file(make_live: MakeLive) -> None:
    live = make_live()
    image_host = requests.Session()
    served = png_bytes((3, 3))
    # The image host: a real adapter on the client's session, answering the https URL.

    class Host(requests.adapters.BaseAdapter):
        def send(self, prepared: requests.PreparedRequest, **_: Any) -> requests.Response:
            response = requests.Response()
            response.status_code, response.url, response.request = 200, prepared.url, prepared
            response.raw = io.BytesIO(served)
            return response

        def close(self) -> None:
            return None

    image_host.mount("https://", Host())
    sent: list[requests.PreparedRequest] = []
    image_host.hooks["response"].append(lambda r, *_a, **_k: sent.append(r.request))
    client = IdeogramClient(base_url=live.url, api_key=KEY, timeout=10, session=image_host)
    client.remix(stored(image="https://assets.example.test/in.png"))
    fetched, posted = sent
    assert fetched.method == "GET" and fetched.url == "https://assets.example.test/in.png"
    assert [f.read() for f in parsed_form(posted).files.getlist("image")] == [served]


def test_an_image_url_refused_by_the_policy_is_never_fetched(make_live: MakeLive) -> None:
    live = make_live()
    policy = UrlPolicy(refuse_private=True, resolve=lambda _host: ["10.0.0.7"])
    client = IdeogramClient(base_url=live.url, api_key=KEY, timeout=10, urls=policy)
    refused = r"image: https://assets\.example\.test/in\.png is refused"
    with pytest.raises(BadRequest, match=refused):
        client.remix(stored(image="https://assets.example.test/in.png"))
    assert stats(live)["providers"]["ideogram"]["calls"] == 0


def test_400_is_a_bad_request_with_the_providers_words(make_live: MakeLive) -> None:
    live = make_live()
    with pytest.raises(BadRequest) as caught:
        client_for(live.url).remix({**stored(), "num_images": 9})  # past the schema
    assert caught.value.status == 400
    assert "num_images must be >= 1 and <= 8" in caught.value.message
    assert isinstance(caught.value, PermanentError)


def test_401_and_403_are_permanent_and_never_show_the_key(make_live: MakeLive) -> None:
    live = make_live(api_key=KEY)
    with pytest.raises(Unauthorized) as no_key:
        client_for(live.url, key="").remix(stored())
    assert no_key.value.status == 401
    wrong = "wrong-key-" + KEY[::-1]
    with pytest.raises(Forbidden) as refused:
        client_for(live.url, key=wrong).remix(stored())
    assert refused.value.status == 403
    assert "Not authorized to generate an image." in refused.value.message
    assert wrong not in str(refused.value) and wrong not in repr(client_for(live.url, key=wrong))
    assert stats(live)["providers"]["ideogram"]["charged"] == 0


def test_422_is_a_safety_rejection_carrying_the_providers_message(make_live: MakeLive) -> None:
    live = make_live(ideogram_422_rate=1.0)
    with pytest.raises(SafetyRejected) as caught:
        client_for(live.url).remix(stored())
    assert caught.value.message == "Prompt or provided image failed safety check."
    assert caught.value.status == 422 and isinstance(caught.value, PermanentError)
    assert stats(live)["providers"]["ideogram"]["charged"] == 0


def test_429_is_rate_limited_with_its_retry_after(make_live: MakeLive) -> None:
    live = make_live(ideogram_429_rate=1.0, retry_after_s=7)
    with pytest.raises(RateLimited) as caught:
        client_for(live.url).remix(stored())
    assert caught.value.retry_after == 7 and isinstance(caught.value, TransientError)


def test_5xx_is_a_transient_server_error(make_live: MakeLive) -> None:
    live = make_live(ideogram_5xx_rate=1.0)
    with pytest.raises(ServerError) as caught:
        client_for(live.url).remix(stored())
    assert caught.value.status == 500 and caught.value.retry_after is None
    assert stats(live)["providers"]["ideogram"]["charged"] == 0


def test_an_answer_cut_mid_body_is_lost_and_was_charged(make_live: MakeLive) -> None:
    live = make_live(ideogram_lost_answer_rate=1.0, ideogram_lost_answer_mode="close")
    with pytest.raises(AnswerLost, match="may have been charged"):
        client_for(live.url).remix(stored(num_images=2))
    figures = stats(live)["providers"]["ideogram"]
    assert figures["calls"] == 1 and figures["charged"] == 1 and figures["images"] == 2


def test_an_answer_held_past_the_timeout_is_lost_and_was_charged(make_live: MakeLive) -> None:
    live = make_live(
        ideogram_lost_answer_rate=1.0,
        ideogram_lost_answer_mode="hold",
        ideogram_lost_answer_hold_s=3.0,
    )
    with pytest.raises(AnswerLost, match=r"within 0\.5s"):
        client_for(live.url, timeout=0.5).remix(stored())
    assert stats(live)["providers"]["ideogram"]["charged"] == 1


def test_a_refused_connection_sent_nothing() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionFailed) as caught:
        client_for(f"http://127.0.0.1:{port}").remix(stored())
    assert not isinstance(caught.value, AnswerLost)


def test_an_unsafe_image_has_no_url(make_live: MakeLive) -> None:
    live = make_live(ideogram_unsafe_rate=1.0)
    answer = client_for(live.url).remix(stored(num_images=2))
    assert [(i.is_image_safe, i.url) for i in answer.items] == [(False, None), (False, None)]
    assert stats(live)["providers"]["ideogram"] == {
        "calls": 1, "charged": 1, "images": 2, "unsafe": 2, "cost": "0.1200"
    }  # fmt: skip


def test_the_stored_request_is_json_and_sent_as_is(make_live: MakeLive) -> None:
    live = make_live()
    request_ = json.loads(json.dumps(stored(style_type="DESIGN", magic_prompt="ON")))
    (item,) = client_for(live.url).remix(request_).items
    assert item.style_type == "DESIGN"
