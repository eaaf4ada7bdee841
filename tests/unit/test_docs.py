"""The README and the architecture map stay true to the code."""

from __future__ import annotations

from dataclasses import fields

from alertd.settings import PREFIX, REPO_ROOT, Settings


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    readme = (REPO_ROOT / "README.md").read_text()

    missing = [f.name for f in fields(Settings) if f"`{PREFIX}{f.name}`" not in readme]

    assert missing == []


def test_the_architecture_map_names_every_top_level_folder() -> None:
    doc = (REPO_ROOT / "docs" / "architecture.md").read_text()
    folders = [
        p.name
        for p in REPO_ROOT.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and p.name not in ("instance", "build", "dist")
        and not p.name.endswith(".egg-info")
    ]

    assert [f for f in folders if f"`{f}/`" not in doc] == []


def test_the_readme_test_command_is_what_ci_runs() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    ci = (REPO_ROOT / ".ci" / "run").read_text()

    assert "python3 dev.py test" in readme and "python3 dev.py test" in ci


def test_the_architecture_map_names_every_package_of_alertd() -> None:
    doc = (REPO_ROOT / "docs" / "architecture.md").read_text()
    packages = [
        str(init.parent.relative_to(REPO_ROOT)) for init in REPO_ROOT.glob("alertd/**/__init__.py")
    ]

    assert [p for p in packages if f"`{p}/`" not in doc] == []
