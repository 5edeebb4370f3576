"""Where the course lives, written into every chapter: one source of truth, ``_config.yml``.

``repository.url`` and ``repository.branch`` in ``_config.yml`` decide each chapter's Colab badge
(``.../blob/<branch>/book/<part>/<chapter>.ipynb``) and the ref its setup cell installs the course
package from (``git+<url>@<branch>``): the notebook a reader opens and the package it installs come
from the same place. ``make notebooks`` runs this on the jupytext sources before writing the
notebooks; ``make fork REPO=owner/name [REF=branch-or-tag]`` first rewrites ``_config.yml``.

    python book/_ext/course_links.py                         # apply _config.yml to every chapter source
    python book/_ext/course_links.py --repo me/course --ref v0.2.0
    python book/_ext/course_links.py --check-release         # on a release branch: prints the tag

An edition is a release branch whose ``_config.yml`` names the tag ``v<companion.__version__>``;
``.github/workflows/release.yml`` tests it and creates that tag (README, "Cutting an edition").
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION = "dl-optimization-companion"  # the import name stays `companion` (that PyPI name is taken)
_BADGE = re.compile(r"\(https://colab\.research\.google\.com/github/[^)\s]+/blob/[^/)\s]+/(book/[^)\s]+\.ipynb)\)")
_INSTALL = re.compile(r'"[\w.-]+\[([a-z_,]+)\] @ git\+[^"@\s]+@[^"\s]+"')


def repository(config_path=ROOT / "_config.yml") -> tuple[str, str]:
    """(url, ref) from ``_config.yml``'s ``repository`` block."""
    config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8"))
    repo = config.get("repository") or {}
    url, ref = str(repo.get("url", "")).rstrip("/"), str(repo.get("branch", "main"))
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise ValueError(f"repository.url in {config_path} must be https://github.com/<owner>/<name>, got {url!r}")
    return url, ref


def release_tag(root=ROOT) -> str:
    """``v`` + ``companion.__version__``, read from the source (the package need not be importable)."""
    text = (Path(root) / "companion" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if not found:
        raise ValueError(f"no __version__ = \"...\" line in {Path(root) / 'companion' / '__init__.py'}")
    return f"v{found.group(1)}"


def check_release(root=ROOT) -> str:
    """The tag of the edition in ``root``; ValueError unless ``_config.yml`` points the badges and
    setup cells at that tag (a tagged edition must install itself, not a moving branch)."""
    tag = release_tag(root)
    _, ref = repository(Path(root) / "_config.yml")
    if ref != tag:
        raise ValueError(f"repository.branch in _config.yml is {ref!r}, but companion.__version__ makes the tag "
                         f"{tag!r}: on the release branch run `make fork REF={tag}` and commit")
    return tag


def colab_link(url: str, ref: str, notebook: str) -> str:
    return f"https://colab.research.google.com/github/{url.removeprefix('https://github.com/')}/blob/{ref}/{notebook}"


def install_requirement(url: str, ref: str, extras: str) -> str:
    return f'"{DISTRIBUTION}[{extras}] @ git+{url}@{ref}"'


def apply(source: str, url: str, ref: str) -> str:
    """A chapter's jupytext source with its badge and setup cell pointing at ``url`` and ``ref``."""
    source = _BADGE.sub(lambda m: f"({colab_link(url, ref, m.group(1))})", source)
    return _INSTALL.sub(lambda m: install_requirement(url, ref, m.group(1)), source)


def set_repository(repo: str, ref: str | None, config_path=ROOT / "_config.yml") -> None:
    """Rewrite ``repository.url`` (and ``branch``) in ``_config.yml``, keeping its comments."""
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise ValueError(f"repo must be <owner>/<name>, got {repo!r}")
    text = Path(config_path).read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(\s+url:\s*)https://github\.com/\S+", rf"\g<1>https://github.com/{repo}", text, count=1)
    if ref:
        text = re.sub(r"(?m)^(\s+branch:\s*)\S+", rf"\g<1>{ref}", text, count=1)
    Path(config_path).write_text(text, encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", help="owner/name of the GitHub repository (written into _config.yml)")
    parser.add_argument("--ref", help="branch or tag the badges open and the setup cells install")
    parser.add_argument("--check-release", action="store_true",
                        help="print the edition's tag; fail unless _config.yml's ref is that tag")
    args = parser.parse_args(argv)
    if args.check_release:
        try:
            print(check_release())
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
        return
    if args.repo or args.ref:
        set_repository(args.repo or repository()[0].removeprefix("https://github.com/"), args.ref)
    url, ref = repository()
    for path in sorted(ROOT.glob("book/part*/[0-9][0-9]_*.py")):
        text = path.read_text(encoding="utf-8")
        new = apply(text, url, ref)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"{path.relative_to(ROOT)}: badge and setup cell -> {url}@{ref}")


if __name__ == "__main__":
    main()
