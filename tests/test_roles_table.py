"""The one role table: docs/roles.md shows it as it is, and every workflow action has its permission."""

from controlplane.management.commands.roles_table import DOC, doc_with_table
from core.roles import ALLOWED, Permission, Role
from registry.actions import ACTIONS
from registry.choices import Action


def test_docs_roles_page_shows_the_table_in_force():
    text = DOC.read_text()
    assert doc_with_table(text) == text, "docs/roles.md is stale: run `manage.py roles_table --write`"
    assert "| Roll back production (`rollback`) |  |  |  | yes | yes |" in text


def test_every_workflow_action_is_a_permission_and_every_permission_has_roles():
    assert set(Action.values) <= set(Permission.values)
    assert set(ACTIONS) <= set(Permission.values)
    assert set(ALLOWED) == set(Permission.values)
    assert all(roles <= set(Role.values) for roles in ALLOWED.values())
