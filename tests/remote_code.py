"""Prefix for subprocess scripts that must run as a user without the package: it makes any import
of ``modeling_mpm`` fail, so transformers' remote code (the files copied into a saved folder) is
the only MPM code that can run."""

BLOCK_PACKAGE = '''
import sys, importlib.abc
class _BlockPackage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "modeling_mpm" or name.startswith("modeling_mpm."):
            raise ImportError("modeling_mpm is blocked in this test")
sys.meta_path.insert(0, _BlockPackage())
sys.path = [p for p in sys.path if p not in ("", ".")]
'''
