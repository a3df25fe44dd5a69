"""Builds funnel._funnel with CMake from the repository this folder belongs to (nothing is downloaded).

pip install --no-build-isolation ./bindings/python runs this in place: CMake configures the whole
repository in build/python (FUNNEL_BUILD_PYTHON=ON, position-independent code, for the Python that runs
pip) and builds the one target. FUNNEL_PYTHON_BUILD_DIR chooses another build folder.
"""
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        if not (ROOT / "CMakeLists.txt").is_file() or not (ROOT / "sdk").is_dir():
            raise RuntimeError(f"{ROOT}: not the Funnel repository; build from bindings/python inside it")
        build = Path(os.environ.get("FUNNEL_PYTHON_BUILD_DIR", ROOT / "build" / "python"))
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DFUNNEL_BUILD_PYTHON=ON",
            "-DFUNNEL_BUILD_TESTS=OFF",
            "-DCMAKE_POSITION_INDEPENDENT_CODE=ON",
            f"-DPython_EXECUTABLE={sys.executable}",
        ]
        subprocess.run(configure, check=True)
        jobs = str(os.cpu_count() or 2)
        subprocess.run(["cmake", "--build", str(build), "--target", "_funnel", "-j", jobs], check=True)
        built = glob.glob(str(build / "bindings" / "python" / "_funnel*.so"))
        if len(built) != 1:
            raise RuntimeError(f"expected one _funnel*.so in {build}/bindings/python, found {built}")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built[0], target)


setup(
    ext_modules=[Extension("funnel._funnel", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
)
