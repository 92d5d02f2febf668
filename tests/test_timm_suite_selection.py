"""The timm suite runner selects every variant and tag of the table, and none of the tests that need the Hub.

(``-k myresnet`` alone, the obvious choice, silently skips ``myresnext*``, ``mywide*`` and ``myse*``.)"""

from __future__ import annotations

from _pytest.mark.expression import Expression

import resnet_hub
from resnet_hub.model.configs import VARIANTS
from timm_suite.run_timm_model_tests import NEEDS_HUB, selection, variants_in

NAMES = resnet_hub.variant_names()


def _selected(test_id: str) -> bool:
    # pytest's -k matches each identifier as a case-insensitive substring of the test's names.
    return Expression.compile(selection(NAMES)).evaluate(lambda ident: ident.lower() in test_id.lower())


def test_every_variant_and_tag_is_selected_and_recognised():
    ids = [f"test_model_forward[1-{name}]" for name in NAMES]
    ids += [f"test_model_default_cfgs[1-{v.name}.{t.tag}]" for v in VARIANTS.values() for t in v.pretrained]
    assert all(_selected(test_id) for test_id in ids)
    assert variants_in(ids, NAMES) == frozenset(NAMES)
    assert _selected("test_factory.py::test_list_models_filter_types[False]")  # the registry tests, whole


def test_hub_tests_and_timms_own_models_are_left_out():
    assert not any(_selected(f"{test}[1-myresnet50.tv_in1k]") for test in NEEDS_HUB)
    assert not _selected("test_model_forward[1-resnet50]")
    assert not _selected("test_model_forward[1-seresnext50_32x4d]")
    assert variants_in(["test_model_forward[1-resnet50]"], NAMES) == frozenset()
