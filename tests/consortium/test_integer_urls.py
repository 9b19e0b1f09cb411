"""Every page with an integer in its path answers 404 beyond the database's range, never 500 (both databases)."""

from __future__ import annotations

import pytest

from common.converters import DB_INT_MAX
from consortium.models import Application

BEYOND = [str(DB_INT_MAX + 1), "9" * 19, "9" * 40, "18446744073709551616"]


@pytest.mark.parametrize("number", BEYOND)
def test_a_block_height_beyond_the_range_is_404(org_admin_client, kit, number):
    assert org_admin_client.get(f"/blocks/{number}/").status_code == 404
    assert org_admin_client.get(f"/blocks/{number}/?after=1").status_code == 404


@pytest.mark.parametrize("number", [str(DB_INT_MAX), "0", "123456789"])
def test_a_block_height_in_range_but_absent_is_404(org_admin_client, kit, number):
    assert org_admin_client.get(f"/blocks/{number}/").status_code == 404


def test_an_existing_block_is_found(org_admin_client, kit, orgs):
    kit.commit([kit.put(orgs[0].writer, "shipments", "SHIP-1", 1)])
    assert org_admin_client.get(f"/blocks/{kit.state.tip.height}/").status_code == 200


@pytest.mark.parametrize("number", [*BEYOND, str(DB_INT_MAX)])
@pytest.mark.parametrize("action", ["propose", "dismiss"])
def test_an_application_id_beyond_the_range_or_absent_is_404(org_admin_client, home, number, action):
    response = org_admin_client.post(f"/governance/applications/{number}/{action}/")
    assert response.status_code == 404
    assert not Application.objects.exists()


@pytest.mark.parametrize("query", ["before", "after", "proposer_after"])
def test_integer_query_parameters_beyond_the_range_are_404_or_ignored(org_admin_client, kit, query):
    response = org_admin_client.get(f"/blocks/?{query}={'9' * 40}")
    assert response.status_code in (200, 404)


def test_search_for_a_huge_height_finds_nothing_without_failing(org_admin_client, kit):
    response = org_admin_client.get("/search/?q=" + "9" * 40)
    assert response.status_code in (200, 404)
