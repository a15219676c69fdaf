"""Shadow tallies kept before answers were compared by their task: every model was a classifier, so the
migration that adds the agreement sum gives each pair of equal labels its count, and the agreement rate
reads as before."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from serving.models import ShadowTally

BEFORE = [("serving", "0004_shadow_trail_and_repeats")]


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


@pytest.mark.django_db(transaction=True)
def test_tallies_before_the_agreement_column_keep_their_rate():
    executor = _migrate(BEFORE)
    Tally = executor.loader.project_state(BEFORE[0]).apps.get_model("serving", "ShadowTally")
    for production, shadow, count in [
        ("cat", "cat", 7),
        ("cat", "dog", 2),
        ("dog", "dog", 1),
        ("dog", "(error)", 1),
    ]:
        Tally.objects.create(
            model="cats", production_version=1, shadow_version=2, production_label=production,
            shadow_label=shadow, count=count,
        )  # fmt: skip
    latest = executor.loader.graph.leaf_nodes()
    _migrate(latest)
    rows = {(t.production_label, t.shadow_label): t.agreement for t in ShadowTally.objects.all()}
    assert rows == {("cat", "cat"): 7.0, ("cat", "dog"): 0.0, ("dog", "dog"): 1.0, ("dog", "(error)"): 0.0}
    assert not MigrationExecutor(connection).migration_plan(latest)
