"""Memory bombs are refused before anything is allocated (issue 19 B): a tiny .npy / .npz whose
header declares 10**13 elements, pickled constructors asked for 10**13 bytes, and JSON nested
100,000 levels deep each give a ValueError naming the file."""

import io
import pickle
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npformat

from modeling_mpm.data import io as dio

HUGE = 10 ** 13


def _bomb_npy(shape=(HUGE,), descr="<f8") -> bytes:
    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    buf.write(b"\0" * 64)
    return buf.getvalue()


def _object_member(payload) -> bytes:
    buf = io.BytesIO()
    npformat.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    buf.write(pickle.dumps(payload, protocol=2))
    return buf.getvalue()


def _npz(path, **members):
    with zipfile.ZipFile(path, "w") as zf:
        for k, data in members.items():
            zf.writestr(k + ".npy", data)
    return path


def test_a_tiny_npy_declaring_a_huge_array_is_refused(tmp_path):
    p = tmp_path / "bomb.npy"
    p.write_bytes(_bomb_npy())
    assert p.stat().st_size < 300
    with pytest.raises(ValueError, match="bomb.npy: .* bytes"):
        dio.read_npy(p)
    with pytest.raises(ValueError, match="bomb.npy"):
        dio.read_keypoints(str(p))
    small = tmp_path / "short.npy"  # below the limit, but more data than the file holds
    small.write_bytes(_bomb_npy(shape=(1000, 17, 2)))
    with pytest.raises(ValueError, match="truncated or crafted"):
        dio.read_npy(small)


def test_a_tiny_npz_member_declaring_a_huge_array_is_refused(tmp_path):
    p = _npz(tmp_path / "bomb.npz", keypoints=_bomb_npy((HUGE // 34, 17, 2)))
    with pytest.raises(ValueError, match=r"bomb.npz\['keypoints'\]"):
        dio.read_npz(p)
    with pytest.raises(ValueError, match="bomb.npz"):
        dio.read_npz_object(p, "keypoints")


class _Call:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


@pytest.mark.parametrize("payload", [
    _Call(bytearray, HUGE), _Call(bytes, HUGE), {"S1": [_Call(bytearray, HUGE)]},
    _Call(np.ndarray, (HUGE,)),
], ids=["bytearray", "bytes", "nested", "ndarray"])
def test_pickled_constructors_asked_for_huge_sizes_are_refused(tmp_path, payload):
    p = _npz(tmp_path / "bomb.npz", positions_3d=_object_member(payload))
    assert p.stat().st_size < 1000
    with pytest.raises(ValueError, match="bomb.npz.*limit"):
        dio.read_npz_object(p, "positions_3d")


def test_pickled_reconstruct_of_a_huge_array_is_refused(tmp_path):
    p = _npz(tmp_path / "bomb.npz", data=_object_member(_Call(_reconstruct(), np.ndarray, (HUGE,), b"b")))
    with pytest.raises(ValueError, match="bomb.npz.*limit"):
        dio.read_npz_object(p, "data")
    # the released layouts (dicts of arrays, built with _reconstruct) still load
    ok = tmp_path / "ok.npz"
    np.savez(ok, data=np.array({"S1": {"Walking": np.zeros((3, 17, 3), np.float32)}}, dtype=object))
    assert dio.read_npz_object(ok, "data")["S1"]["Walking"].shape == (3, 17, 3)


def test_deeply_nested_json_is_a_sentence(tmp_path):
    from modeling_mpm.data.mocap import load_climb_npy

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="deep.json: JSON nested 100000 levels"):
        dio.read_keypoints(str(deep))
    np.save(tmp_path / "take.npy", np.zeros((4, 3, 3), np.float32))
    with pytest.raises(ValueError, match="deep.json: JSON nested"):
        load_climb_npy(str(tmp_path / "take.npy"), joint_names=str(deep))
    # brackets inside strings do not count
    text = tmp_path / "names.json"
    text.write_text('["' + "[" * 1000 + '\\"", "b"]')
    assert len(dio.read_json(text)) == 2
