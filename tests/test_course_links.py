"""Where the course lives (book/_ext/course_links.py): forks, editions, and the release workflow."""

import shutil
from pathlib import Path

import pytest
import yaml
from course_links import apply, check_release, colab_link, install_requirement, release_tag, repository, set_repository

ROOT = Path(__file__).resolve().parents[1]

CHAPTER = '''\
# %% [markdown]
# # Momentum
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/old/course/blob/main/book/part1_optimizers/02_momentum.ipynb)

# %% tags=["hide-input"]
try:
    import companion
except ImportError:
    %pip install -q "dl-optimization-companion[torch,keras] @ git+https://github.com/old/course@main"
    import companion
'''


@pytest.fixture
def course(tmp_path):
    (tmp_path / "companion").mkdir()
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "companion" / "__init__.py").write_text('"""The course package."""\n\n__version__ = "1.2.3"\n')
    return tmp_path


def test_apply_points_badge_and_setup_cell_at_one_place():
    url, ref = "https://github.com/me/fork", "v1.2.3"
    new = apply(CHAPTER, url, ref)
    assert colab_link(url, ref, "book/part1_optimizers/02_momentum.ipynb") in new
    assert "https://colab.research.google.com/github/me/fork/blob/v1.2.3/book/part1_optimizers/02_momentum.ipynb" in new
    assert install_requirement(url, ref, "torch,keras") in new
    assert '"dl-optimization-companion[torch,keras] @ git+https://github.com/me/fork@v1.2.3"' in new
    assert "old/course" not in new
    assert apply(new, url, ref) == new


def test_set_repository_rewrites_url_and_ref_and_keeps_the_rest(course):
    before = (course / "_config.yml").read_text()
    set_repository("me/fork", "v1.2.3", course / "_config.yml")
    after = (course / "_config.yml").read_text()
    assert repository(course / "_config.yml") == ("https://github.com/me/fork", "v1.2.3")
    assert len(after.splitlines()) == len(before.splitlines())  # comments and other keys kept
    assert yaml.safe_load(after)["title"] == yaml.safe_load(before)["title"]
    with pytest.raises(ValueError, match="repo must be"):
        set_repository("https://github.com/me/fork", None, course / "_config.yml")


def test_repository_refuses_a_url_that_is_not_a_github_repository(course):
    config = course / "_config.yml"
    config.write_text(config.read_text().replace(repository(config)[0], "https://gitlab.com/me/fork"))
    with pytest.raises(ValueError, match="repository.url"):
        repository(config)


def test_an_edition_must_install_its_own_tag(course):
    assert release_tag(course) == "v1.2.3"
    with pytest.raises(ValueError, match=r"make fork REF=v1\.2\.3"):
        check_release(course)  # _config.yml still names the branch
    set_repository(repository(course / "_config.yml")[0].removeprefix("https://github.com/"), "v1.2.3", course / "_config.yml")
    assert check_release(course) == "v1.2.3"


def test_release_workflow_checks_then_tests_then_tags():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    assert workflow[True]["push"]["branches"] == ["release/**"]  # YAML reads the key `on` as True
    steps = [step.get("run", "") for step in workflow["jobs"]["tag"]["steps"]]
    check = next(i for i, run in enumerate(steps) if "--check-release" in run)
    test = next(i for i, run in enumerate(steps) if run.strip() == "make test")
    tag = next(i for i, run in enumerate(steps) if "git push origin" in run)
    assert check < test < tag
    assert "already exists on another commit" in steps[check]
