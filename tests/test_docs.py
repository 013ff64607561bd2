"""The README explains every setting: a clone alone tells an operator what each SNEAKY_* variable does."""

from dataclasses import fields
from pathlib import Path

from core.settings import PREFIX, Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table():
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [PREFIX + f.name.upper() for f in fields(Settings) if f"`{PREFIX}{f.name.upper()}`" not in table]
    assert not missing, missing


def test_the_licence_is_an_spdx_expression_so_installing_prints_no_deprecation_box():
    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"  # a table made setuptools print its box three times
    assert "setuptools>=77" in project["build-system"]["requires"]
