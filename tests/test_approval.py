"""Approvals: the per-operation policy, "don't ask again in this conversation", and the /chip/approvals page."""

from __future__ import annotations

import re

import pytest

from theseus.actions import NotFound, OperationError
from theseus.chat.approval import (ALLOWANCES_ID, APPROVALS_URL, ASK, NEVER, add_approval_routes, allow_here,
                                   allowed_here, approval_row_id, forget_here, forget_url, needs_confirm, policy,
                                   set_policy)
from theseus.runtime import Runtime

HX = {"HX-Request": "true"}
NOTES = '''
from theseus.actions import Result, operation
from theseus.apps.crud import BaseApp

class Notes(BaseApp):
    name = "notes"
    display_name = "Notes"
    table = "notes"
    item = "note"
    order = 15

    @operation(target="note")
    def insert(self, ctx, name: str) -> Result:
        """Add a note."""
        return Result("Noted", self.insert_item(ctx, name=name))
'''


@pytest.fixture
def runtime(config, backend):
    """A Theseus with a user's app (Notes) beside the built-ins."""
    config.user_apps_dir.mkdir(parents=True)
    (config.user_apps_dir / "notes.py").write_text(NOTES)
    runtime = Runtime(config, backend)
    yield runtime
    runtime.close()


@pytest.fixture
def app(app, runtime):
    """The real app with the approval routes (added here until create_app adds them)."""
    if not any(getattr(route, "path", None) == APPROVALS_URL for route in app.routes):
        add_approval_routes(app, runtime)
    return app


@pytest.fixture
def ops(runtime):
    return runtime.registry.operations


@pytest.fixture
def conversations(runtime):
    return runtime.chat.conversations


def stored(runtime) -> dict:
    """Every approval key in the store, to show that a refused request changed nothing."""
    return {key: runtime.db.store[key] for key in runtime.db.store if key.startswith("approval")}


def row_of(html: str, op_name: str) -> str:
    match = re.search(rf'<tr[^>]* id="{approval_row_id(op_name)}".*?</tr>', html, re.S)
    assert match, f"no row for {op_name}"
    return match.group()


def checked(row: str) -> str:
    """The policy the row's control shows as chosen."""
    values = re.findall(r'<input type="radio" name="policy" value="(\w+)" checked', row)
    assert len(values) == 1, row
    return values[0]


# ---- the policy ----

def test_destructive_operations_ask_by_default_and_the_others_do_not(runtime, ops):
    db = runtime.db
    assert policy(db, ops["tasks.delete"]) == ASK and needs_confirm(db, ops["tasks.delete"], None)
    assert policy(db, ops["tasks.insert"]) == NEVER and not needs_confirm(db, ops["tasks.insert"], None)
    assert policy(db, ops["notes.insert"]) == NEVER


def test_a_choice_is_kept_and_overrides_the_default(runtime, ops, config, backend):
    set_policy(runtime.db, "tasks.delete", NEVER)
    set_policy(runtime.db, "tasks.insert", ASK)
    assert not needs_confirm(runtime.db, ops["tasks.delete"], None)
    assert needs_confirm(runtime.db, ops["tasks.insert"], None)
    runtime.close()
    reopened = Runtime(config, backend)
    try:
        assert policy(reopened.db, reopened.registry.operations["tasks.delete"]) == NEVER
        assert policy(reopened.db, reopened.registry.operations["tasks.insert"]) == ASK
    finally:
        reopened.close()


@pytest.mark.parametrize("value", ["", "always", "ASK", "never ", None, 1])
def test_an_unknown_policy_is_refused_and_changes_nothing(runtime, ops, value):
    with pytest.raises(OperationError) as error:
        set_policy(runtime.db, "tasks.delete", value)
    assert error.value.status == 400 and stored(runtime) == {}
    assert policy(runtime.db, ops["tasks.delete"]) == ASK


# ---- don't ask again in this conversation ----

def test_dont_ask_again_holds_in_its_conversation_only_until_forgotten(runtime, ops, conversations):
    db, delete = runtime.db, ops["tasks.delete"]
    first, second = conversations.current()["id"], conversations.create()["id"]
    allow_here(db, first, "tasks.delete")
    allow_here(db, first, "tasks.delete")
    allow_here(db, first, "profiles.delete")
    assert allowed_here(db, first) == ["profiles.delete", "tasks.delete"] and allowed_here(db, second) == []
    assert not needs_confirm(db, delete, first) and needs_confirm(db, delete, second)
    assert needs_confirm(db, delete, None)
    forget_here(db, first)
    forget_here(db, first)
    assert allowed_here(db, first) == [] and needs_confirm(db, delete, first)


def test_an_allowance_does_not_outlive_its_conversation(runtime, ops, conversations):
    db = runtime.db
    conversations.create()
    old = conversations.create()["id"]
    with db.transaction():  # made a while ago (the test runs faster than the stamps' milliseconds)
        db.conn.execute("UPDATE conversations SET created = '2020-01-01T00:00:00.000+00:00' WHERE id = ?", (old,))
    allow_here(db, old, "tasks.delete")
    conversations.delete(old)
    assert allowed_here(db, old) == []
    new = conversations.create()["id"]
    assert new == old  # SQLite gives the deleted conversation's id to the next one
    assert allowed_here(db, new) == [] and needs_confirm(db, ops["tasks.delete"], new)
    with pytest.raises(NotFound):
        allow_here(db, 999, "tasks.delete")


def test_dont_ask_changes_nothing_about_an_operation_that_never_asks(runtime, ops, conversations):
    set_policy(runtime.db, "tasks.delete", NEVER)
    allow_here(runtime.db, conversations.current()["id"], "tasks.delete")
    set_policy(runtime.db, "tasks.delete", ASK)
    assert not needs_confirm(runtime.db, ops["tasks.delete"], conversations.current()["id"])


# ---- the page ----

def test_the_page_lists_every_offered_operation_by_app_with_its_policy(client, ops):
    page = client.get(APPROVALS_URL)
    assert page.status_code == 200 and "<title>Chip's approvals · Theseus</title>" in page.text
    offered = [op for op in ops.values() if not op.internal]
    for op in offered:
        assert checked(row_of(page.text, op.name)) == (ASK if op.destructive else NEVER)
        assert ("destructive" in row_of(page.text, op.name)) == op.destructive
    assert not any(f'id="{approval_row_id(op.name)}"' in page.text for op in ops.values() if op.internal)
    headings = re.findall(r"<h2>([^<]+)</h2>", page.text)
    assert headings[:3] == ["Tasks", "Notes", "Profiles"]  # by the apps' order; Notes is a user's app
    assert "No conversation has any." in page.text


def test_a_choice_posted_swaps_its_row_and_the_page_shows_it(client, runtime):
    answer = client.post(APPROVALS_URL, data={"operation": "tasks.delete", "policy": NEVER}, headers=HX)
    assert answer.status_code == 200 and 'hx-swap-oob="true"' in answer.text
    assert checked(row_of(answer.text, "tasks.delete")) == NEVER
    assert checked(row_of(client.get(APPROVALS_URL).text, "tasks.delete")) == NEVER
    assert checked(row_of(client.get(APPROVALS_URL).text, "tasks.insert")) == NEVER
    client.post(APPROVALS_URL, data={"operation": "tasks.insert", "policy": ASK}, headers=HX)
    assert checked(row_of(client.get(APPROVALS_URL).text, "tasks.insert")) == ASK


@pytest.mark.parametrize("form, status", [
    ({"operation": "tasks.nope", "policy": NEVER}, 404),
    ({"operation": "hello.finish_job", "policy": ASK}, 404),  # internal: never offered to Chip
    ({"operation": "", "policy": NEVER}, 404),
    ({"policy": NEVER}, 404),
    ({"operation": "tasks.delete", "policy": "sometimes"}, 400),
    ({"operation": "tasks.delete", "policy": ""}, 400),
    ({"operation": "tasks.delete"}, 400),
])
def test_a_bad_choice_is_refused_clearly_and_changes_nothing(client, runtime, form, status):
    answer = client.post(APPROVALS_URL, data=form, headers=HX)
    assert answer.status_code == status and 'id="toast"' in answer.text and "nothing was changed" in answer.text
    assert stored(runtime) == {}


def test_a_foreign_site_cannot_change_a_choice(client, runtime):
    answer = client.post(APPROVALS_URL, data={"operation": "tasks.delete", "policy": NEVER},
                         headers={"Origin": "http://evil.example"})
    assert answer.status_code == 403 and stored(runtime) == {}


def test_the_page_lists_allowances_and_forget_clears_them(client, runtime, conversations):
    conversation = conversations.current()
    conversations.rename(conversation["id"], "Spring <cleaning>")
    allow_here(runtime.db, conversation["id"], "tasks.delete")
    before = stored(runtime)
    page = client.get(APPROVALS_URL).text
    assert stored(runtime) == before  # a GET writes nothing
    assert "Spring &lt;cleaning&gt;" in page and f'hx-post="{forget_url(conversation["id"])}"' in page
    answer = client.post(forget_url(conversation["id"]), headers=HX)
    assert answer.status_code == 200 and f'id="{ALLOWANCES_ID}"' in answer.text
    assert "No conversation has any." in answer.text and allowed_here(runtime.db, conversation["id"]) == []


@pytest.mark.parametrize("number", ["abc", "0", "-1", "1.5", "99999999999999999999"])
def test_forgetting_a_malformed_conversation_id_is_a_400(client, number):
    assert client.post(f"{APPROVALS_URL}/forget/{number}", headers=HX).status_code == 400
