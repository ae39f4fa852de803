"""The development set (requirements.txt, what ``make venv`` installs and the suite runs on) satisfies
the package's declared dependencies (pyproject.toml): the tests test what a user installs."""
import re
import tomllib

from packaging.requirements import Requirement

from tests.servers import ROOT


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s#]+)", line)
        if match:
            found[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return found


def test_every_dependency_and_extra_is_pinned_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["redis"],
                *project["optional-dependencies"]["postgres"], *project["optional-dependencies"]["testing"]]
    pinned = pins()
    for spec in map(Requirement, declared):
        name = re.sub(r"[-_.]+", "-", spec.name).lower()
        assert name in pinned, f"{spec} is not pinned in requirements.txt"
        assert spec.specifier.contains(pinned[name], prereleases=True), f"{name}=={pinned[name]} is outside {spec}"
