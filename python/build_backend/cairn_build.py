"""A PEP 517 build backend for `pip install .`: builds the extension with CMake and zips the package into a wheel.

In-tree and dependency-free (pyproject.toml: `requires = []`), because the machines cairn is built on reach no
package index: pip's isolated build environment could not fetch setuptools. It configures the whole project in
`build-pip/` (Release, no tests, no examples; CAIRN_CMAKE_BUILD_DIR=<dir> reuses an already configured build
directory instead), builds the `cairn_python` target, and packs `<build>/python/cairn/` with the dist-info.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _project() -> dict:
    if tomllib is None:
        return {"name": "cairn", "version": "0.1.0", "description": "", "dependencies": ["numpy"]}
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def _wheel_tag() -> str:
    impl = f"cp{sys.version_info.major}{sys.version_info.minor}"
    abi = impl + (sys.abiflags if hasattr(sys, "abiflags") else "")
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{impl}-{abi}-{platform}"


def _build_package(config_settings) -> pathlib.Path:
    """Builds the package with CMake; returns `<build>/python/cairn`."""
    reuse = os.environ.get("CAIRN_CMAKE_BUILD_DIR")
    build_dir = pathlib.Path(reuse) if reuse else ROOT / "build-pip"
    if not reuse:
        cmd = ["cmake", "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
               "-DCAIRN_BUILD_TESTS=OFF", "-DCAIRN_BUILD_EXAMPLES=OFF", "-DCAIRN_BUILD_PYTHON=ON",
               f"-DPython3_EXECUTABLE={sys.executable}"]
        if shutil.which("ninja"):
            cmd += ["-G", "Ninja"]
        for extra in (config_settings or {}).get("cmake-args", "").split():
            cmd.append(extra)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
    jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 1)
    subprocess.run(["cmake", "--build", str(build_dir), "--target", "cairn_python", "-j", jobs], check=True,
                   stdout=sys.stderr)
    package = build_dir / "python" / "cairn"
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    if not (package / f"_cairn{suffix}").exists():
        raise RuntimeError(f"{package} has no _cairn{suffix}: the build is for another Python than {sys.executable}")
    return package


def _metadata(project: dict) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}",
             f"Summary: {project.get('description', '')}", f"Requires-Python: {project.get('requires-python', '>=3')}"]
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies", [])]
    return "\n".join(lines) + "\n"


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    name, version = project["name"], project["version"]
    package = _build_package(config_settings)
    tag = _wheel_tag()
    dist_info = f"{name}-{version}.dist-info"
    wheel_name = f"{name}-{version}-{tag}.whl"
    record = []

    def add(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
        zf.writestr(zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{arcname},sha256={digest},{len(data)}")

    path = pathlib.Path(wheel_directory) / wheel_name
    with zipfile.ZipFile(path, "w") as zf:
        for file in sorted(package.rglob("*")):
            if file.is_dir() or "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            add(zf, f"cairn/{file.relative_to(package).as_posix()}", file.read_bytes())
        add(zf, f"{dist_info}/METADATA", _metadata(project).encode())
        add(zf, f"{dist_info}/WHEEL", (f"Wheel-Version: 1.0\nGenerator: cairn_build\nRoot-Is-Purelib: false\n"
                                       f"Tag: {tag}\n").encode())
        add(zf, f"{dist_info}/top_level.txt", b"cairn\n")
        record.append(f"{dist_info}/RECORD,,")
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return wheel_name


def build_sdist(sdist_directory, config_settings=None):
    """The files git tracks (or, without git, the tree minus build directories)."""
    project = _project()
    base = f"{project['name']}-{project['version']}"
    try:
        files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], check=True, capture_output=True
                               ).stdout.decode().split("\0")
        files = [f for f in files if f]
    except (OSError, subprocess.CalledProcessError):
        files = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
                 if p.is_file() and not p.relative_to(ROOT).parts[0].startswith(("build", ".git"))]
    name = f"{base}.tar.gz"
    with tarfile.open(pathlib.Path(sdist_directory) / name, "w:gz") as tar:
        for f in files:
            tar.add(ROOT / f, arcname=f"{base}/{f}", recursive=False)
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        data = _metadata(project).encode()
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return name
