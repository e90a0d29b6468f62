"""The studio shell: login, navigation, roles, first admin."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db

SECTIONS = ["/", "/datasets/", "/jobs/", "/playground/", "/models/", "/tokens/"]


@pytest.mark.parametrize("path", SECTIONS)
def test_every_section_asks_an_anonymous_visitor_to_log_in(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={path}"


@pytest.mark.parametrize("path", SECTIONS)
def test_every_section_renders_for_an_analyst(alice_client, path):
    response = alice_client.get(path)
    assert response.status_code == 200
    # A `{# ... #}` comment spanning lines is printed, not hidden, by Django.
    assert "{#" not in response.content.decode()


@pytest.mark.parametrize(
    ("label", "path"),
    [
        ("Datasets", "/datasets/"),
        ("Jobs", "/jobs/"),
        ("Playground", "/playground/"),
        ("Models", "/models/"),
        ("API tokens", "/tokens/"),
    ],
    ids=["datasets", "jobs", "playground", "models", "tokens"],
)
def test_the_dashboard_links_every_section(alice_client, label, path):
    assert f'<a href="{path}">{label}</a>' in alice_client.get("/").content.decode()


def test_the_dashboard_marks_itself_as_the_current_section(alice_client):
    html = alice_client.get("/").content.decode()
    assert '<a href="/" aria-current="page">Dashboard</a>' in html


def test_analysts_do_not_see_the_admin_link(alice_client):
    assert 'href="/admin/"' not in alice_client.get("/").content.decode()


def test_operators_see_the_admin_link_and_can_open_it(client, olga):
    client.force_login(olga)
    assert '<a href="/admin/">Admin</a>' in client.get("/").content.decode()
    assert client.get("/admin/").status_code == 200


def test_analysts_cannot_open_the_admin(alice_client):
    assert alice_client.get("/admin/").status_code == 302


def test_logging_in_and_out(client, alice):
    from tests.processes import PASSWORD

    response = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_a_wrong_password_says_so(client, alice):
    response = client.post("/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_ensure_admin_creates_one_admin_once_with_a_random_password():
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    text = out.getvalue()
    password = text.split("password: ")[1].split()[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert admin.check_password(password)
    assert len(password) >= 16

    again = StringIO()
    call_command("ensure_admin", stdout=again)
    assert again.getvalue().strip() == "An admin user exists already."
    assert get_user_model().objects.filter(is_superuser=True).count() == 1
