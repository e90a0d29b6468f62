"""Settings from the environment fail loudly on values they cannot read."""

import pytest

from studio.env import EnvError, env_bool, env_choice, env_int, env_list
from studio.redis_urls import with_db


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("yes", True), ("On", True), ("0", False), ("false", False)]
)
def test_env_bool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("FLAG", raw)
    assert env_bool("FLAG") is expected


def test_env_bool_names_the_variable_it_cannot_read(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(EnvError) as error:
        env_bool("DEBUG")
    assert str(error.value) == (
        "DEBUG='maybe' is not a boolean; use one of 1/0, true/false, yes/no, on/off"
    )


def test_env_int_refuses_words_and_values_below_the_minimum(monkeypatch):
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(EnvError, match="PORT='eighty' must be a whole number"):
        env_int("PORT", 8000)
    monkeypatch.setenv("PORT", "0")
    with pytest.raises(EnvError, match="PORT='0' must be at least 1"):
        env_int("PORT", 8000, minimum=1)


def test_env_list_and_choice(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", "a.example, b.example,,")
    assert env_list("ALLOWED_HOSTS", []) == ["a.example", "b.example"]
    monkeypatch.setenv("LOG_LEVEL", "loud")
    with pytest.raises(EnvError, match="LOG_LEVEL='loud' must be one of"):
        env_choice("LOG_LEVEL", "INFO", {"INFO", "DEBUG"})


def test_redis_urls_get_their_own_database_number():
    assert with_db("redis://h:6379", 1) == "redis://h:6379/1"
    assert (
        with_db("redis://:pw@h:6379/5?ssl_cert_reqs=none", 2)
        == "redis://:pw@h:6379/2?ssl_cert_reqs=none"
    )
    with pytest.raises(ValueError, match="REDIS_URL must start with redis://"):
        with_db("http://h", 0)
