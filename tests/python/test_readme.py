"""The Python quick start in README.md runs as written (with its /ckpt paths moved to a temporary directory)."""

import os
import re


def test_readme_python_quick_start(tmp_path):
    readme = open(os.path.join(os.environ["CAIRN_SOURCE_DIR"], "README.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "README.md has no Python block"
    for block in blocks:
        code = block.replace('"/ckpt/', f'"{tmp_path}/')
        namespace = {}
        exec(compile(code, "README.md", "exec"), namespace)
    assert (tmp_path / "1" / "commit_success.txt").exists()
    assert (tmp_path / "run1" / "1000" / "commit_success.txt").exists()
