"""Registration with timm, as the package sees it: ``import resnet_hub`` calls :func:`install`.

The finder itself lives in the top-level module ``_resnet_hub_timm_hook`` (shipped in the same wheel), because
the start-up hook ``resnet_hub_timm_hook.pth`` must install it in every Python process without importing this
package (its variant table costs more than a start-up hook may). One module, one finder: whichever of the two
runs first installs it and the other finds it in place.

* if timm is already imported, ``install()`` registers at once (``import timm; import resnet_hub``);
* otherwise the finder waits at the front of ``sys.meta_path`` and registers right after timm's ``__init__`` has
  run, whatever form the import takes (``import timm``, ``from timm import create_model``, ``import timm.models``,
  after any number of ``importlib.util.find_spec("timm")`` probes), then retires.
"""

from __future__ import annotations

from _resnet_hub_timm_hook import ENV_OFF, install, installed, register_now, uninstall

__all__ = ["ENV_OFF", "install", "installed", "register_now", "uninstall"]
