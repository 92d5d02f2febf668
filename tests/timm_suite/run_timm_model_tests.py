"""timm's own model tests, run on every resnet-hub variant and pretrained tag.

Registering with timm promises what timm's test suite checks for its own models: creation on the meta device and
in bfloat16, default cfgs whose ``pool_size`` matches the features, ``features_only``, FX tracing (torchvision's
``create_feature_extractor``), TorchScript, backward passes. This script holds our variants to that same suite:

1. fetch the sdist of the installed timm version from the package registry (``pip download --no-deps
   --no-binary :all: timm==X``; cached under ``~/.cache/resnet-hub/timm-sdist/X`` or
   ``$RESNET_HUB_TIMM_SDIST_CACHE``), which carries ``tests/``;
2. run its ``tests/test_models.py`` in a scratch directory whose conftest imports ``resnet_hub`` (timm has no
   plugin discovery and lists models at collection), selecting every variant of the table by name;
3. leave out only the tests that download pretrained weights from the Hub (``test_model_load_pretrained``,
   ``test_model_features_pretrained``, ``test_model_inference``): the suite has no offline mode for them. The
   cfgs of every tag are still checked by ``test_model_default_cfgs``;
4. run its ``tests/test_factory.py`` too (registry listing, name parsing, pretrained cfg lookups), whole: the other
   test files name timm's own models, so only the registry tests say something about ours being registered.

Exit status 0 only when nothing failed and every variant was exercised. CI runs it from ``./dev test``:

    python tests/timm_suite/run_timm_model_tests.py [-- extra pytest args]
"""

from __future__ import annotations

import importlib.metadata
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "RESNET_HUB_TIMM_SDIST_CACHE"
COMPLETE = ".complete"
# The test files taken from the sdist: test_models.py parametrises over the registry (so over our variants),
# test_factory.py checks the registry itself; conftest.py holds the fixtures timm's test files share.
MODEL_TESTS = "test_models.py"
REGISTRY_TESTS = "test_factory.py"
TEST_FILES = (MODEL_TESTS, REGISTRY_TESTS, "conftest.py")
# Tests that call create_model(..., pretrained=True): they need the real Hub.
NEEDS_HUB = ("test_model_load_pretrained", "test_model_features_pretrained", "test_model_inference")


class SuiteUnavailable(RuntimeError):
    """timm's sdist could not be fetched (no registry access) or does not carry the expected test files."""


@dataclass(frozen=True)
class SuiteResult:
    timm_version: str
    passed: int  # test_models.py
    registry_passed: int  # test_factory.py
    failed: int
    errors: int
    skipped: int
    seconds: float
    cpu_seconds: float  # user + system time of the pytest process: comparable across loaded and idle machines
    variants_seen: frozenset[str]
    variants_expected: frozenset[str]

    @property
    def ok(self) -> bool:
        everything = self.variants_seen == self.variants_expected
        return self.failed == 0 and self.errors == 0 and self.passed > 0 and everything

    def summary(self) -> str:
        missing = sorted(self.variants_expected - self.variants_seen)
        return (f"timm {self.timm_version}'s own model tests: {self.passed} passed on {len(self.variants_seen)} of "
                f"{len(self.variants_expected)} variants, plus {self.registry_passed} registry tests passed; "
                f"{self.failed} failed, {self.errors} errors, {self.skipped} skipped; {self.seconds:.0f} s "
                f"({self.cpu_seconds:.0f} s of CPU)" + (f"; never exercised: {', '.join(missing)}" if missing else ""))


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "resnet-hub" / "timm-sdist")


def installed_timm_version() -> str:
    """The locked timm (what ``uv sync`` installed): the suite must match the code it tests."""
    return importlib.metadata.version("timm")


def ensure_test_files(version: str) -> Path:
    """The directory holding timm ``version``'s test files (downloaded and extracted once, then cached)."""
    target = cache_root() / version
    if (target / COMPLETE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--no-binary", ":all:", "--dest", str(staging / "sdist"), f"timm=={version}"],
            capture_output=True, text=True, timeout=600)
        archives = sorted((staging / "sdist").glob("timm-*.tar.gz"))
        if proc.returncode != 0 or not archives:
            raise SuiteUnavailable(f"pip could not download the sdist of timm=={version}: "
                                   f"{(proc.stderr or proc.stdout).strip()[-600:]}")
        _extract_tests(archives[0], staging / "tests")
        (staging / "sdist").joinpath(archives[0].name).unlink()
        (staging / COMPLETE).write_text(version + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _extract_tests(archive: Path, destination: Path) -> None:
    """Only ``<root>/tests/*.py`` members, as plain files (nothing outside ``destination`` can be written)."""
    destination.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) == 3 and parts[1] == "tests" and parts[2].endswith(".py") and member.isfile():
                source = tar.extractfile(member)
                assert source is not None
                (destination / parts[2]).write_bytes(source.read())
    missing = [name for name in TEST_FILES if not (destination / name).is_file()]
    if missing:
        raise SuiteUnavailable(f"{archive.name} carries no tests/{', tests/'.join(missing)}")


def selection(variant_names: list[str]) -> str:
    """The ``-k`` expression: every variant by name (``myresnet`` alone would miss ``myresnext*``, ``mywide*``,
    ``myse*``), minus the tests that need the Hub."""
    names = " or ".join(variant_names)
    hub = " or ".join(NEEDS_HUB)
    registry = REGISTRY_TESTS.removesuffix(".py")  # a module's name is a keyword of each of its tests
    return f"(({names}) and not ({hub})) or {registry}"


def variants_in(test_ids: list[str], variant_names: list[str]) -> frozenset[str]:
    """Which variants the run exercised: a test id ends in ``[<batch>-<name>[.<tag>]]``."""
    seen = set()
    for test_id in test_ids:
        param = test_id.rsplit("[", 1)[-1].rstrip("]")
        model = param.split("-", 1)[-1].split(".", 1)[0]
        if model in variant_names:
            seen.add(model)
    return frozenset(seen)


def run_suite(extra_args: list[str] | None = None) -> SuiteResult:
    import resnet_hub  # the table: which variants must be exercised

    names = resnet_hub.variant_names()
    version = installed_timm_version()
    source = ensure_test_files(version) / "tests"
    with tempfile.TemporaryDirectory(prefix="timm-suite-") as scratch:
        work = Path(scratch)
        for name in TEST_FILES:
            shutil.copyfile(source / name, work / name)
        # Appended to timm's conftest: our models must be registered before test_models.py calls list_models().
        with open(work / "conftest.py", "a", encoding="utf-8") as conftest:
            conftest.write("\n\nimport resnet_hub  # noqa: E402,F401  (registers the variants with timm)\n")
        (work / "pytest.ini").write_text("[pytest]\n")  # our rootdir: neither timm's nor resnet-hub's settings
        report = work / "report.xml"
        env = dict(os.environ, HF_HUB_OFFLINE="1")  # nothing selected may reach the network
        command = [sys.executable, "-m", "pytest", MODEL_TESTS, REGISTRY_TESTS, "-q", "-p", "no:cacheprovider",
                   "-W", "ignore::pytest.PytestUnknownMarkWarning", "-rfE", "--tb=short", "--durations=5",
                   "-k", selection(names), f"--junitxml={report}", *(extra_args or [])]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=work, env=env)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if not report.is_file():
            raise SuiteUnavailable(f"pytest wrote no report (exit status {proc.returncode})")
        root = ElementTree.parse(report).getroot()
        cases = root.iter("testcase")
        ids, passed, registry_passed, failed, errors, skipped = [], 0, 0, 0, 0, 0
        for case in cases:
            outcome = next((tag for tag in ("failure", "error", "skipped") if case.find(tag) is not None), "passed")
            failed += outcome == "failure"
            errors += outcome == "error"
            skipped += outcome == "skipped"
            if case.get("classname", "").endswith(REGISTRY_TESTS.removesuffix(".py")):
                registry_passed += outcome == "passed"
            else:
                ids.append(case.get("name", ""))
                passed += outcome == "passed"
    return SuiteResult(version, passed, registry_passed, failed, errors, skipped, seconds, cpu_seconds,
                       variants_in(ids, names),
                       frozenset(names))


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    try:
        result = run_suite(extra)
    except SuiteUnavailable as exc:
        print(f"timm suite: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
