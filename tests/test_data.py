"""Specification of the galaxy datasets (phys555_cl.data).

Galaxy10 tests use tiny HDF5 files of the real layout; download tests use a local HTTP server
on 127.0.0.1 (nothing leaves the machine).
"""

import hashlib
import http.server
import os
import threading

import h5py
import numpy as np
import pytest
import torch

from phys555_cl import data as D
from phys555_cl.galaxies import LABEL_KEYS, REDSHIFT_THRESHOLD, simulate

N_TINY = 20


def write_tiny_galaxy10(path, n=N_TINY, side=32, seed=0):
    """A Galaxy10_DECals.h5 look-alike: every class, a known colour per channel."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(n, side, side, 3), dtype=np.uint8)
    images[..., 0] += 200  # R (= z band) bright, B (= g band) faint: tells the order apart
    ans = np.arange(n, dtype=np.uint8) % 10
    redshift = np.linspace(0.01, 0.2, n)
    redshift[3] = np.nan  # the real catalogue misses some redshifts
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["ans"] = ans
        f["ra"] = rng.uniform(0, 360, n)
        f["dec"] = rng.uniform(-10, 30, n)
        f["redshift"] = redshift
        f["pxscale"] = np.full(n, 0.262)
    return images, ans, redshift


@pytest.fixture()
def tiny(tmp_path):
    path = tmp_path / "Galaxy10_DECals.h5"
    images, ans, redshift = write_tiny_galaxy10(path)
    return path, images, ans, redshift


# ---------------------------------------------------------------------------------------------
# SyntheticGalaxies
# ---------------------------------------------------------------------------------------------


def test_synthetic_galaxies_is_the_simulated_sample():
    data = D.SyntheticGalaxies(10, size=16, seed=4)
    images, labels = simulate(10, size=16, seed=4)
    assert len(data) == 10
    assert torch.equal(data.images, images)
    image, lab = data[3]
    assert image.shape == (3, 16, 16)
    assert set(LABEL_KEYS) <= set(lab)
    assert int(lab["odd"]) == int(labels["odd"][3])


def test_synthetic_galaxies_work_with_a_dataloader():
    loader = torch.utils.data.DataLoader(D.SyntheticGalaxies(12, size=16), batch_size=5)
    images, labels = next(iter(loader))
    assert images.shape == (5, 3, 16, 16)
    assert labels["redshift"].shape == (5,)


# ---------------------------------------------------------------------------------------------
# Galaxy10 DECaLS: layout, mapping, caching
# ---------------------------------------------------------------------------------------------


def test_galaxy10_images_are_resized_float_in_band_order_g_r_z(tiny):
    path, images, _, _ = tiny
    data = D.Galaxy10DECaLS(path, size=16)
    assert data.images.shape == (N_TINY, 3, 16, 16)
    assert data.images.dtype == torch.float32
    assert 0 <= data.images.min() and data.images.max() <= 1
    # channel 2 (z) is the file's R channel, the bright one
    assert data.images[:, 2].mean() > data.images[:, 0].mean() + 0.5


def test_galaxy10_resize_is_antialiased(tiny):
    path, images, _, _ = tiny
    data = D.Galaxy10DECaLS(path, size=16, cache=False)
    # a 2x2 box average of the original is close to the antialiased result; plain sampling is not
    box = images.reshape(N_TINY, 16, 2, 16, 2, 3).mean((2, 4)) / 255.0
    got = data.images.permute(0, 2, 3, 1).flip(-1).numpy()
    assert np.abs(got - box).mean() < 0.02


def test_galaxy10_classes_map_to_the_schema(tiny):
    path, _, ans, _ = tiny
    lab = D.Galaxy10DECaLS(path, size=16).labels
    expected = {  # class: smooth_or_featured, edge_on, odd, odd_feature
        0: (1, 0, 1, 2), 1: (1, 0, 1, 3), 2: (0, -1, 0, -1), 3: (0, -1, 0, -1),
        4: (0, -1, 0, -1), 5: (1, 0, 0, -1), 6: (1, 0, 0, -1), 7: (1, 0, 0, -1),
        8: (1, 1, 0, -1), 9: (1, 1, 0, -1),
    }
    for i, c in enumerate(ans):
        got = tuple(int(lab[k][i]) for k in ("smooth_or_featured", "edge_on", "odd", "odd_feature"))
        assert got == expected[int(c)], (c, got)
    assert torch.equal(lab["galaxy10_class"], torch.as_tensor(ans, dtype=torch.int64))


def test_galaxy10_labels_follow_the_schema_conventions(tiny):
    path, _, _, redshift = tiny
    lab = D.Galaxy10DECaLS(path, size=16).labels
    assert set(LABEL_KEYS) <= set(lab)
    assert lab["redshift"].dtype == torch.float32
    assert torch.equal(lab["edge_on"] == -1, lab["smooth_or_featured"] == 0)
    assert torch.equal(lab["odd_feature"] == -1, lab["odd"] == 0)
    # a missing redshift: -1, no redshift_high, label_tier 0; otherwise tier 2
    assert lab["redshift"][3] == -1 and lab["redshift_high"][3] == -1 and lab["label_tier"][3] == 0
    known = np.isfinite(redshift)
    assert (lab["label_tier"][known] == 2).all()
    high = torch.as_tensor(redshift[known] >= REDSHIFT_THRESHOLD).long()
    assert torch.equal(lab["redshift_high"][known], high)


def test_galaxy10_reads_in_chunks_with_the_same_result(tiny):
    path, _, _, _ = tiny
    a = D.Galaxy10DECaLS(path, size=16, chunk=3, cache=False)
    b = D.Galaxy10DECaLS(path, size=16, chunk=512, cache=False)
    assert torch.equal(a.images, b.images)


def test_galaxy10_cache_is_written_beside_the_file_keyed_by_size(tiny):
    path, _, _, _ = tiny
    D.Galaxy10DECaLS(path, size=16)
    D.Galaxy10DECaLS(path, size=24)
    names = sorted(os.listdir(path.parent))
    assert "Galaxy10_DECals.16px.npz" in names and "Galaxy10_DECals.24px.npz" in names
    assert not [n for n in names if n.endswith(".tmp")]


def test_galaxy10_second_load_reads_the_cache_not_the_file(tiny, monkeypatch):
    path, _, _, _ = tiny
    first = D.Galaxy10DECaLS(path, size=16)

    def fail(self, chunk):
        raise AssertionError("read the HDF5 file although a cache exists")

    monkeypatch.setattr(D.Galaxy10DECaLS, "_read_and_resize", fail)
    second = D.Galaxy10DECaLS(path, size=16)
    assert torch.equal(first.images, second.images)
    for key in first.labels:
        assert torch.equal(first.labels[key], second.labels[key])


def test_galaxy10_cache_of_another_file_is_not_used(tiny):
    path, _, _, _ = tiny
    D.Galaxy10DECaLS(path, size=16)
    write_tiny_galaxy10(path, n=10, seed=1)  # a different file at the same path
    os.utime(path, (1, 1))
    data = D.Galaxy10DECaLS(path, size=16)
    assert len(data) == 10


# ---------------------------------------------------------------------------------------------
# Galaxy10 DECaLS: missing and damaged files
# ---------------------------------------------------------------------------------------------


def test_missing_file_error_names_the_file_and_how_to_get_it(tmp_path):
    path = tmp_path / "nowhere" / "Galaxy10_DECals.h5"
    with pytest.raises(FileNotFoundError) as err:
        D.Galaxy10DECaLS(path)
    assert str(path) in str(err.value)
    assert "download=True" in str(err.value) and "zenodo" in str(err.value)


def test_truncated_file_error_says_so(tiny, tmp_path):
    path, _, _, _ = tiny
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(OSError) as err:
        D.Galaxy10DECaLS(cut, size=16)
    assert str(cut) in str(err.value) and "truncated" in str(err.value)


def test_not_hdf5_at_all_is_reported(tmp_path):
    path = tmp_path / "Galaxy10_DECals.h5"
    path.write_text("<html>404 Not Found</html>")
    with pytest.raises(OSError, match="not a readable HDF5 file"):
        D.Galaxy10DECaLS(path)


def test_wrong_layout_missing_dataset_is_reported(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError) as err:
        D.Galaxy10DECaLS(path, size=8)
    assert str(path) in str(err.value) and "ans" in str(err.value)


def test_wrong_layout_float_images_are_reported(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 3, 8, 8), np.float32)
        f["ans"] = np.zeros(2, np.uint8)
    with pytest.raises(ValueError, match=r"expected \(N, H, W, 3\) uint8"):
        D.Galaxy10DECaLS(path, size=8)


def test_bad_size_raises_value_error(tiny):
    path, _, _, _ = tiny
    with pytest.raises(ValueError, match="got 2"):
        D.Galaxy10DECaLS(path, size=2)


# ---------------------------------------------------------------------------------------------
# Download against a local server
# ---------------------------------------------------------------------------------------------


@pytest.fixture()
def server(tiny):
    """Serves /good.h5 (the tiny file), /cut.h5 (announces all bytes, sends a third)."""
    path, _, _, _ = tiny
    payload = path.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 5

        def do_GET(self):
            if self.path not in ("/good.h5", "/cut.h5"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.path == "/good.h5":
                self.wfile.write(payload)
            else:
                self.wfile.write(payload[: len(payload) // 3])
                self.close_connection = True

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    stopper = threading.Timer(60, httpd.shutdown)  # stops by itself even if a test hangs
    stopper.daemon = True
    stopper.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield url, hashlib.sha256(payload).hexdigest()
    finally:
        stopper.cancel()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_download_good_file_is_verified_and_renamed(server, tmp_path):
    url, sha = server
    dest = tmp_path / "dl" / "Galaxy10_DECals.h5"
    got = D.download_galaxy10(dest, url=url + "/good.h5", sha256=sha, progress=False)
    assert got == str(dest) and dest.exists()
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == sha
    assert os.listdir(dest.parent) == ["Galaxy10_DECals.h5"]


def test_download_with_wrong_checksum_leaves_no_file(server, tmp_path):
    url, _ = server
    dest = tmp_path / "dl" / "Galaxy10_DECals.h5"  # tmp_path holds the served file
    with pytest.raises(OSError, match="checksum mismatch"):
        D.download_galaxy10(dest, url=url + "/good.h5", sha256="0" * 64, progress=False)
    assert os.listdir(dest.parent) == []


def test_download_cut_off_leaves_no_file(server, tmp_path):
    url, sha = server
    dest = tmp_path / "dl" / "Galaxy10_DECals.h5"  # tmp_path holds the served file
    with pytest.raises(OSError, match="cut off"):
        D.download_galaxy10(dest, url=url + "/cut.h5", sha256=sha, progress=False, timeout=5)
    assert os.listdir(dest.parent) == []


def test_download_unreachable_url_names_it(server, tmp_path):
    url, sha = server
    dest = tmp_path / "dl" / "Galaxy10_DECals.h5"  # tmp_path holds the served file
    with pytest.raises(OSError, match="404"):
        D.download_galaxy10(dest, url=url + "/missing.h5", sha256=sha, progress=False)
    assert not dest.exists()


def test_dataset_downloads_when_asked_then_loads(server, tmp_path):
    url, sha = server
    dest = tmp_path / "dl" / "Galaxy10_DECals.h5"  # tmp_path holds the served file
    data = D.Galaxy10DECaLS(dest, size=16, download=True, url=url + "/good.h5", sha256=sha)
    assert len(data) == N_TINY and dest.exists()


# ---------------------------------------------------------------------------------------------
# Hubble eXtreme Deep Field cutouts
# ---------------------------------------------------------------------------------------------


def test_hubble_cutouts_are_offline_real_galaxies():
    images, positions = D.hubble_deep_field_cutouts(size=24)
    assert images.shape[0] >= 50 and images.shape[1:] == (3, 24, 24)
    assert images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1
    assert positions.shape == (len(images), 3)
    # a galaxy sits in the middle of its stamp: the centre is brighter than the corners
    centre = images[:, :, 10:14, 10:14].mean()
    corners = images[:, :, :3, :3].mean()
    assert centre > 2 * corners


# ---------------------------------------------------------------------------------------------
# Download safety, with a fake URL opener (no network, no server)
# ---------------------------------------------------------------------------------------------


class FakeResponse:
    """What urllib.request.urlopen returns, serving ``payload`` in small blocks."""

    def __init__(self, payload, on_read=None):
        self.payload, self.offset, self.on_read = payload, 0, on_read
        self.headers = {"Content-Length": str(len(payload))}

    def read(self, n):
        if self.on_read is not None:
            self.on_read(self.offset)
        block = self.payload[self.offset:self.offset + min(n, 64)]
        self.offset += len(block)
        return block

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def fake_opener(monkeypatch, payloads, on_read=None):
    """urlopen serving ``payloads[url]``; a KeyError for an unknown URL."""
    monkeypatch.setattr(D.urllib.request, "urlopen",
                        lambda url, timeout=None: FakeResponse(payloads[url], on_read))


PAYLOAD = b"galaxy bytes " * 50
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def test_download_never_writes_through_a_planted_part_link(monkeypatch, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    dest = tmp_path / "dl" / "Galaxy10_DECals.h5"
    dest.parent.mkdir()
    os.symlink(victim, str(dest) + ".part")  # the old fixed temporary name
    fake_opener(monkeypatch, {"fake://bad": b"evil" * 10})
    with pytest.raises(OSError, match="checksum mismatch"):
        D.download_galaxy10(dest, url="fake://bad", sha256=PAYLOAD_SHA, progress=False)
    assert victim.read_bytes() == b"precious" and not dest.exists()
    fake_opener(monkeypatch, {"fake://good": PAYLOAD})
    D.download_galaxy10(dest, url="fake://good", sha256=PAYLOAD_SHA, progress=False)
    assert victim.read_bytes() == b"precious" and dest.read_bytes() == PAYLOAD


def test_download_replaces_a_link_at_the_destination_instead_of_following_it(monkeypatch,
                                                                           tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    dest = tmp_path / "Galaxy10_DECals.h5"
    os.symlink(victim, dest)
    fake_opener(monkeypatch, {"fake://good": PAYLOAD})
    D.download_galaxy10(dest, url="fake://good", sha256=PAYLOAD_SHA, progress=False)
    assert not dest.is_symlink() and dest.read_bytes() == PAYLOAD
    assert victim.read_bytes() == b"precious"


def test_download_temporary_file_is_private_and_new(monkeypatch, tmp_path):
    seen = []

    def look(offset):
        if offset == 0:
            parts = [p for p in os.listdir(tmp_path) if p.endswith(".part")]
            seen.extend((p, os.stat(tmp_path / p).st_mode & 0o777) for p in parts)

    fake_opener(monkeypatch, {"fake://good": PAYLOAD}, on_read=look)
    D.download_galaxy10(tmp_path / "g.h5", url="fake://good", sha256=PAYLOAD_SHA,
                        progress=False)
    assert len(seen) == 1 and seen[0][1] == 0o600  # only the owner can read it while unverified
    assert sorted(os.listdir(tmp_path)) == ["g.h5"]


def test_verified_download_is_readable_as_the_umask_allows(monkeypatch, tmp_path):
    fake_opener(monkeypatch, {"fake://good": PAYLOAD})
    old = os.umask(0o022)
    try:
        D.download_galaxy10(tmp_path / "g.h5", url="fake://good", sha256=PAYLOAD_SHA,
                            progress=False)
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "g.h5").st_mode & 0o777 == 0o644


def test_two_downloads_at_once_both_return_a_verified_file(monkeypatch, tmp_path):
    both_started = threading.Barrier(2, timeout=10)

    def wait_for_the_other(offset):
        if offset == 64:  # both are mid-download at the same time
            both_started.wait()

    fake_opener(monkeypatch, {"fake://good": PAYLOAD}, on_read=wait_for_the_other)
    dest = tmp_path / "Galaxy10_DECals.h5"
    results, errors = [], []

    def download():
        try:
            results.append(D.download_galaxy10(dest, url="fake://good", sha256=PAYLOAD_SHA,
                                               progress=False))
        except Exception as err:  # pragma: no cover - reported by the assert below
            errors.append(err)

    threads = [threading.Thread(target=download) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == [] and results == [str(dest)] * 2
    assert dest.read_bytes() == PAYLOAD
    assert os.listdir(tmp_path) == ["Galaxy10_DECals.h5"]


def test_a_bad_download_beside_a_good_one_never_leaves_an_unverified_file(monkeypatch,
                                                                         tmp_path):
    both_started = threading.Barrier(2, timeout=10)

    def wait_for_the_other(offset):
        if offset == 64:
            both_started.wait()

    fake_opener(monkeypatch, {"fake://good": PAYLOAD, "fake://bad": b"x" * len(PAYLOAD)},
                on_read=wait_for_the_other)
    dest = tmp_path / "Galaxy10_DECals.h5"
    outcome = {}

    def download(url):
        try:
            outcome[url] = D.download_galaxy10(dest, url=url, sha256=PAYLOAD_SHA,
                                               progress=False)
        except OSError as err:
            outcome[url] = err

    threads = [threading.Thread(target=download, args=(u,)) for u in ("fake://good",
                                                                        "fake://bad")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert outcome["fake://good"] == str(dest)
    assert "checksum mismatch" in str(outcome["fake://bad"])
    assert dest.read_bytes() == PAYLOAD
    assert os.listdir(tmp_path) == ["Galaxy10_DECals.h5"]
