"""Settings from the environment: the public URL follows the port unless it is set."""

from __future__ import annotations

from alertd.settings import load_settings


def test_alertd_port_moves_the_public_url_when_it_is_unset() -> None:
    settings = load_settings(environ={"ALERTD_PORT": "8088"})

    assert settings.PUBLIC_URL == "http://127.0.0.1:8088"


def test_a_wildcard_host_gives_a_public_url_on_loopback() -> None:
    wildcard = "0.0.0.0"  # noqa: S104 - a setting under test, nothing is bound
    settings = load_settings(environ={"ALERTD_HOST": wildcard, "ALERTD_PORT": "9000"})

    assert settings.PUBLIC_URL == "http://127.0.0.1:9000"


def test_a_set_public_url_is_kept_whatever_the_port() -> None:
    settings = load_settings(
        environ={"ALERTD_PORT": "8088", "ALERTD_PUBLIC_URL": "https://alerts.example.org"}
    )

    assert settings.PUBLIC_URL == "https://alerts.example.org"
