"""Packaging step (setuptools ``cmdclass``): ship ``resnet_hub_timm_hook.pth`` at the root of site-packages.

Python runs the ``import`` lines of ``*.pth`` files in site-packages at start-up; that one line is what makes
``timm.create_model("myresnet50")`` work in programs that never import resnet_hub (see
``_resnet_hub_timm_hook``). setuptools has no setting for a file at the wheel's root, so ``build_py`` copies it:

* regular wheel: into ``build_lib``, whose contents become the wheel's root (= site-packages);
* editable install (PEP 660, ``./dev sync``): setuptools does not copy modules then, but it writes whatever lands
  in the ``install`` command's ``install_lib`` (the unpacked editable wheel) into the wheel, so the hook goes there.
"""

from __future__ import annotations

import os

from setuptools.command.build_py import build_py

PTH_NAME = "resnet_hub_timm_hook.pth"


class BuildPyWithStartupHook(build_py):
    def run(self) -> None:
        super().run()
        self.copy_file(PTH_NAME, os.path.join(self._pth_dir(), PTH_NAME), preserve_mode=False)

    def _pth_dir(self) -> str:
        if getattr(self, "editable_mode", False):
            return self.get_finalized_command("install").install_lib
        return self.build_lib

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), os.path.join(self._pth_dir(), PTH_NAME)]
