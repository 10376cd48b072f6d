"""The client against the contract, `docs/asyncapi.yaml`: every frame the server may send has a
typed event whose fields are the contract's, and every frame a client may send has a method.
(No server needed: a contract change without a client change fails here.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

import confab_client
from confab_client import SERVER_FRAME_TYPES, ConfabClient
from confab_client.events import _PARSERS, parse_event

ASYNCAPI = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"

#: client frame type -> the ConfabClient method that sends it (None: sent by the client itself)
CLIENT_METHODS = {
    "ping": None,
    "resume": None,
    "message:send": "send",
    "channel:join": "join",
    "message:edit": "edit",
    "message:delete": "delete",
    "reaction:add": "react",
    "reaction:remove": "unreact",
    "typing:start": "typing",
    "channel:create": "create_channel",
    "dm:open": "open_dm",
    "channel:rename": "rename_channel",
    "channel:archive": "archive_channel",
    "channel:leave": "leave_channel",
    "channel:invite": "invite",
    "channel:kick": "kick",
    "message:pin": "pin",
    "channel:mark": "mark_read",
    "presence:set": "set_presence",
}


@pytest.fixture(scope="module")
def contract() -> dict:
    if not ASYNCAPI.exists():
        pytest.skip(f"{ASYNCAPI} not found (the client is tested outside the Confab repository)")
    return yaml.safe_load(ASYNCAPI.read_text())


def resolve(contract: dict, reference: str) -> dict:
    node = contract
    for part in reference.lstrip("#/").split("/"):
        node = node[part]
    return node


def frames(contract: dict, operation: str) -> dict[str, dict]:
    """frame type -> its payload schema, for the operation's messages."""
    found = {}
    for reference in contract["operations"][operation]["messages"]:
        message = resolve(contract, reference["$ref"])
        if "$ref" in message:
            message = resolve(contract, message["$ref"])
        payload = message["payload"]
        type_schema = payload["properties"]["type"]
        for frame_type in [type_schema["const"]] if "const" in type_schema else type_schema["enum"]:
            found[frame_type] = payload
    return found


def test_every_server_frame_has_a_typed_event_with_the_contracts_fields(contract):
    server_frames = frames(contract, "serverSends")
    assert set(server_frames) == set(SERVER_FRAME_TYPES)
    for frame_type, payload in server_frames.items():
        properties = set(payload["properties"]) - {"type"}
        event_class = type(_PARSERS[frame_type](_sample(contract, payload, frame_type)))
        field_names = {f.name for f in dataclasses.fields(event_class)} - {"raw", "attempts"}
        assert field_names == properties, f"{frame_type}: client {sorted(field_names)} != contract {sorted(properties)}"
        assert event_class.type == frame_type


def test_every_server_frame_parses_from_a_contract_sample(contract):
    for frame_type, payload in frames(contract, "serverSends").items():
        event = parse_event(_sample(contract, payload, frame_type))
        assert not isinstance(event, confab_client.UnknownEvent), frame_type
        assert event.type == frame_type


def test_every_client_frame_has_a_method(contract):
    client_frames = frames(contract, "clientSends")
    assert set(client_frames) == set(CLIENT_METHODS)
    for frame_type, method in CLIENT_METHODS.items():
        if method is not None:
            assert callable(getattr(ConfabClient, method, None)), f"{frame_type}: no ConfabClient.{method}"


def test_error_codes_of_the_contract_are_known(contract):
    codes = set(contract["components"]["schemas"]["errorCode"]["enum"])
    assert confab_client.RETRYABLE_CODES <= codes


def _sample(contract: dict, schema: dict, frame_type: str | None = None) -> object:
    """A value of `schema` with every property filled in."""
    if "$ref" in schema:
        return _sample(contract, resolve(contract, schema["$ref"]))
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return frame_type if frame_type in schema["enum"] else schema["enum"][0]
    if "oneOf" in schema:
        return _sample(contract, schema["oneOf"][0])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            name: _sample(contract, sub, frame_type if name == "type" else None)
            for name, sub in schema.get("properties", {}).items()
        }
    if kind == "array":
        return [_sample(contract, schema["items"])]
    if kind == "integer":
        return 1
    if kind == "boolean":
        return True
    if schema.get("format") == "uuid":
        return "00000000-0000-4000-8000-000000000000"
    return "text"
