"""The event contract (docs/contract.md): the AsyncAPI 3.0 document against the official JSON Schema,
its content against the registries and docs/events.md, ``manage.py realtime_schema``, the staff-only
endpoints, and the TypeScript declarations compiled with ``tsc --strict`` with the original clients' snippets."""
import copy
import json
from pathlib import Path
import re
import shutil
import subprocess
import uuid

from django.core.management import call_command
from django.test import Client
import jsonschema
import pytest
import yaml

from django_oda_realtime.commands import registry as commands
from django_oda_realtime.contract import asyncapi, catalog, typescript
from django_oda_realtime.permissions import policy
from django_oda_realtime.subscriptions import topics
from tests.conftest import token_for

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "node_modules" / "@asyncapi" / "specs" / "schemas" / "3.0.0.json"
TSC = ROOT / "node_modules" / ".bin" / "tsc"


def npm_file(path: Path) -> Path:
    """npm dev dependencies must be there: fail (never skip) with what to run."""
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make node` (npm ci) at the repository root")
    return path


@pytest.fixture(scope="module")
def asyncapi_validator():
    schema = json.loads(npm_file(SPEC).read_text())
    assert schema["$id"] == "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
    return jsonschema.Draft7Validator(schema)


def problems_of(validator, doc) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(json.loads(json.dumps(doc)))]


# -- the document -------------------------------------------------------------------------


def test_the_document_is_valid_asyncapi_3(asyncapi_validator):
    doc = asyncapi.document()
    assert doc["asyncapi"] == "3.0.0"
    assert problems_of(asyncapi_validator, doc) == []


@pytest.mark.parametrize("breakage", ["operation without action", "message ref outside its channel", "bad schema"])
def test_the_validator_catches_a_broken_document(asyncapi_validator, breakage):
    doc = copy.deepcopy(asyncapi.document())
    if breakage == "operation without action":
        del doc["operations"]["receive_inventory.update"]["action"]
    elif breakage == "message ref outside its channel":
        doc["operations"]["receive_inventory.update"]["messages"] = [{"$ref": 42}]
    else:
        doc["components"]["messages"]["inventory.updated"]["payload"]["properties"]["data"]["type"] = "text"
    assert problems_of(asyncapi_validator, doc) != []


def test_every_registration_is_in_the_document():
    doc = asyncapi.document()
    assert asyncapi.problems() == []
    addresses = {channel["address"] for channel in doc["channels"].values()}
    for kind in policy.kinds():
        assert (f"{kind.name}:{{id}}" if kind.has_id else kind.name) in addresses
    names = {message["name"] for message in doc["components"]["messages"].values()}
    for name in commands.names() + [f"{verb}:{t}" for t in topics.names() for verb in ("subscribe", "unsubscribe")]:
        assert f"receive_{name.replace(':', '.')}" in doc["operations"], name
        assert name in names
    for name, type in catalog.events:
        assert name in names


def test_rooms_say_who_may_join_and_what_is_sent_there():
    channels = asyncapi.document()["channels"]
    location = channels["room_inventory.location"]
    assert location["address"] == "inventory:location:{id}" and "id" in location["parameters"]
    assert "inventory.view_inventorylevel" in location["description"]
    assert "subscribe:inventory" in location["description"]
    assert set(location["messages"]) == {"inventory.updated", "inventory.lowStock", "inventory.reservation"}
    assert "own primary key" in channels["room_user"]["x-join-rule"]
    assert channels["room_staff"]["x-join-rule"] == "Staff accounts (is_staff)."
    assert "customer's own user" in channels["room_orders.customer"]["x-join-rule"]
    assert set(channels["room_broadcast"]["messages"]) == {"notification_system.event", "notification_system.maintenance"}


def test_commands_have_their_argument_ack_and_errors():
    doc = asyncapi.document()
    update = doc["operations"]["receive_inventory.update"]
    assert update["action"] == "receive" and update["x-error-event"] == "inventory:updateError"
    assert {"conflict", "permission_denied", "not_found", "validation_error"} <= set(update["x-error-codes"])
    assert update["reply"]["messages"] == [{"$ref": "#/channels/socket/messages/ack_inventory.update"}]
    argument = doc["components"]["messages"]["command_inventory.update"]["payload"]
    assert set(argument["required"]) == {"inventoryItemId", "quantity", "reason"}
    subscribe = doc["operations"]["receive_subscribe.orders"]
    assert subscribe["x-error-event"] == "subscribe:error"
    assert doc["operations"]["receive_auth.refresh"]["x-error-event"] == "auth:error"


def test_notification_has_one_message_per_type_with_the_envelope():
    messages = asyncapi.document()["components"]["messages"]
    alert = messages["notification_security.alert"]["payload"]
    assert alert["properties"]["event"] == {"const": "notification"}
    assert alert["properties"]["type"] == {"const": "security:alert"}
    assert set(alert["required"]) == {"event", "type", "data", "id", "timestamp"}
    error = messages["inventory.updateError"]["payload"]
    assert {"error", "code"} <= set(error["required"])


def test_every_data_schema_is_a_valid_json_schema():
    for spec in asyncapi.events():
        jsonschema.Draft7Validator.check_schema(spec.schema)
    for spec in asyncapi.command_specs():
        for schema in (spec.data or {}, spec.result):
            jsonschema.Draft7Validator.check_schema(schema)


# -- docs/events.md ----------------------------------------------------------------------------


def documented_events() -> set[tuple[str, str]]:
    """(event, type) of every event docs/events.md names: its table, its ### headings, its error events."""
    text = (ROOT / "docs" / "events.md").read_text()
    found: set[tuple[str, str]] = set()
    table = next(block for block in text.split("\n\n") if block.startswith("| event |"))
    for row in table.splitlines()[2:]:
        cell = row.split("|")[1]
        names = re.findall(r"`([^`]+)`", cell)
        if " type " in cell:
            found |= {(names[0], kind) for kind in names[1:]}
        else:
            found.add((names[0], names[0]))
    section = None
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        for name in re.findall(r"^###+ `([\w:{}]+)`(?: and `([\w:{}]+)`)?", line):
            for one in filter(None, name):
                found.add(("notification", one) if section == "Notifications" else (one, one))
    found |= {(name, name) for name in re.findall(r"`(inventory:\w+Error)`", text)}
    # ``shopify:{resource}:progress`` stands for the names listed under its heading
    templates = {pair for pair in found if "{" in pair[0]}
    for name, _ in templates:
        pattern = re.escape(name).replace(r"\{resource\}", "[a-z]+")
        listed = set(re.findall(rf"`({pattern})`", text))
        assert listed, name
        found |= {(one, one) for one in listed}
    return found - templates


def test_every_event_of_docs_events_md_is_in_the_contract():
    documented = documented_events()
    assert ("notification", "security:alert") in documented and ("shopify:order:progress",) * 2 in documented
    assert len(documented) >= 16
    in_contract = {(spec.name, spec.type) for spec in asyncapi.events()}
    assert documented - in_contract == set()


def test_every_command_of_docs_events_md_is_in_the_contract():
    text = (ROOT / "docs" / "events.md").read_text()
    documented = set(re.findall(r"^\| `(inventory:\w+)` \| `\{", text, re.M))
    assert documented == {"inventory:update", "inventory:reserve"}
    assert documented <= {spec.name for spec in asyncapi.command_specs()}


# -- manage.py realtime_schema ---------------------------------------------------------------


def test_the_command_writes_yaml_json_and_typescript(tmp_path, asyncapi_validator):
    call_command("realtime_schema", "--output", str(tmp_path / "asyncapi.yaml"),
                 "--typescript", str(tmp_path / "realtime.d.ts"), "--host", "rt.example.com", "--secure", "--strict")
    doc = yaml.safe_load((tmp_path / "asyncapi.yaml").read_text())
    assert problems_of(asyncapi_validator, doc) == []
    assert doc["servers"]["socketio"] == {**doc["servers"]["socketio"], "host": "rt.example.com", "protocol": "wss",
                                          "pathname": "/socket.io/"}
    assert (tmp_path / "realtime.d.ts").read_text() == typescript.declarations()
    call_command("realtime_schema", "--format", "json", "--output", str(tmp_path / "asyncapi.json"))
    assert json.loads((tmp_path / "asyncapi.json").read_text()) == json.loads(json.dumps(asyncapi.document()))


def test_strict_fails_on_a_command_without_a_contract(tmp_path):
    from django.core.management.base import CommandError

    commands.register("returns:approve", lambda caller, data: {}, error_event="returns:approveError")
    try:
        assert "command 'returns:approve' has no describe_command()" in asyncapi.problems()
        doc = asyncapi.document()
        assert doc["operations"]["receive_returns.approve"]["x-error-event"] == "returns:approveError"
        assert "returns.approveError" in doc["components"]["messages"]  # its error event, with the error data
        with pytest.raises(CommandError):
            call_command("realtime_schema", "--strict", "--output", str(tmp_path / "a.json"))
    finally:
        commands._commands.pop("returns:approve")


# -- over HTTP, staff only ---------------------------------------------------------------------


ACCESS = [
    # (who, how, expected status)
    ("anonymous", None, 401),
    ("user", "jwt", 403),
    ("staff", "jwt", 200),
    ("staff", "session", 200),
    ("user", "session", 403),
]


@pytest.mark.django_db
@pytest.mark.parametrize("who, how, status", ACCESS, ids=[f"{w}-{h}" for w, h, _ in ACCESS])
def test_only_staff_fetch_the_document(settings, make_user, asyncapi_validator, who, how, status):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "rt.example.com"]
    client, headers = Client(), {}
    if who != "anonymous":
        user = make_user(is_staff=who == "staff")
        if how == "jwt":
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token_for(user)}"
        else:
            client.force_login(user)
    response = client.get("/api/realtime/asyncapi.json", HTTP_HOST="rt.example.com", **headers)
    assert response.status_code == status
    if status == 200:
        doc = response.json()
        assert problems_of(asyncapi_validator, doc) == []
        assert doc["servers"]["ws"]["host"] == "rt.example.com"


@pytest.mark.django_db
def test_staff_fetch_yaml_and_typescript(make_user):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token_for(make_user(is_staff=True))}"}
    response = Client().get("/api/realtime/asyncapi.yaml", **headers)
    assert response.status_code == 200 and response["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(response.content)["asyncapi"] == "3.0.0"
    response = Client().get("/api/realtime/realtime.d.ts", **headers)
    assert response.status_code == 200 and response.content.decode() == typescript.declarations()


# -- TypeScript ------------------------------------------------------------------------------


def tsc(folder: Path) -> subprocess.CompletedProcess:
    if shutil.which("node") is None:
        pytest.fail("Node.js is required to compile the TypeScript declarations (install nodejs and npm)")
    return subprocess.run(
        [str(npm_file(TSC)), "--strict", "--noEmit", "--target", "es2022", "--module", "nodenext",
         "--moduleResolution", "nodenext", "--lib", "es2022,dom", str(folder / "contract_client.ts")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def ts_folder():
    """A folder inside the repository (so ``socket.io-client`` resolves from node_modules) with the snippets."""
    folder = ROOT / "test-output" / f"contract-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("contract_client.ts"), folder / "contract_client.ts")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_declarations_compile_strictly_with_the_original_snippets(ts_folder):
    call_command("realtime_schema", "--typescript", str(ts_folder / "realtime.d.ts"))
    result = tsc(ts_folder)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_snippets_fail_to_compile_when_the_contract_lacks_an_event(ts_folder):
    text = typescript.declarations()
    assert '  "order:updated": (payload: ' in text
    (ts_folder / "realtime.d.ts").write_text(re.sub(r'\n  "order:updated": [^\n]*', "", text))
    result = tsc(ts_folder)
    assert result.returncode != 0 and "order:updated" in result.stdout, result.stdout


@pytest.mark.parametrize("schema, expected", [
    ({"type": "string", "enum": ["a", "b"]}, '"a" | "b"'),
    ({"type": ["integer", "null"]}, "number | null"),
    ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, "number | string"),
    ({"type": "array", "items": {"type": "boolean"}}, "Array<boolean>"),
    ({"type": "object", "additionalProperties": {"type": "number"}}, "Record<string, number>"),
    ({"type": "object", "properties": {"a-b": {"type": "string"}}, "required": [], "additionalProperties": False},
     '{\n  "a-b"?: string;\n}'),
    ({}, "unknown"),
], ids=["enum", "nullable", "anyOf", "array", "mapping", "quoted-optional", "any"])
def test_json_schema_to_typescript(schema, expected):
    assert typescript.ts_type(schema) == expected


def test_public_api_is_pinned():
    import django_oda_realtime.contract

    assert sorted(django_oda_realtime.contract.__all__) == ["catalog", "describe_command", "describe_topic", "register_event"]


def test_comments_cannot_break_out_of_the_declarations():
    assert typescript._comment("closes */ early\nand wraps") == "closes *\\/ early and wraps"
