import json
import os

import jax
import numpy as np
import pytest

import advpath_jax as ap
from advpath_jax.errors import AdvpathError
from advpath_jax.explain.registry import Explainers, check_method_names, required_models
from advpath_jax.models import make_resnet
from advpath_jax.pipeline import attribute


@pytest.fixture(scope="module")
def explainers():
    model = make_resnet(18, width=0.125, seed=2)
    return Explainers(f=ap.score_fn(model), classifier=model, steps=3)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(size=(7, 32, 32, 1)).astype(np.float32)


def test_slugs_are_unique_and_safe():
    from advpath_jax.explain.registry import DEFAULT_METHODS

    slugs = [attribute.method_slug(n) for n in DEFAULT_METHODS]
    assert len(set(slugs)) == len(slugs)
    assert all(s.replace("-", "").replace("_", "").replace(".", "").isalnum() for s in slugs)


def test_job_writes_shards_resumes_and_matches_direct_maps(tmp_path, explainers, images):
    names = ["Gradient", "IG", "GradCAM", "Random"]
    calls = []

    def counting(x, todo, key):
        calls.append((len(x), tuple(todo)))
        return explainers.explain(x, todo, key)

    stats = attribute.attribute_split(counting, images, names, str(tmp_path), shard_size=3, seed=1)
    # 7 images, at most 3 a shard: shards of 3, 2, 2 images, each run as a batch of 3 (one compiled shape)
    assert stats["maps_computed"] == 7 * 4 and [n for n, _ in calls] == [3, 3, 3]
    assert attribute.shard_bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]
    # the stored maps are the explainer's maps of each shard's images (padded with its last one,
    # the padding dropped); unpadded, they differ by float rounding only (other batch size)
    padded = explainers.explain(images[[3, 4, 4]], ["Gradient", "IG"], jax.random.key(0))
    alone = explainers.explain(images[3:5], ["Gradient", "IG"], jax.random.key(0))
    for name in ("Gradient", "IG"):
        stored = np.load(attribute.shard_path(str(tmp_path), name, 1))
        np.testing.assert_allclose(stored, padded[name][:2], rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(stored, alone[name], rtol=1e-4, atol=1e-8)
    gathered = attribute.gather_rows(str(tmp_path), "IG", np.array([0, 4, 6]), 7, 3)
    full = np.concatenate([np.load(attribute.shard_path(str(tmp_path), "IG", s)) for s in range(3)])
    np.testing.assert_array_equal(gathered, full[[0, 4, 6]])
    # resume: delete one shard of one method; only it is recomputed
    os.remove(attribute.shard_path(str(tmp_path), "GradCAM", 2))
    calls.clear()
    stats = attribute.attribute_split(counting, images, names, str(tmp_path), shard_size=3, seed=1)
    assert calls == [(3, ("GradCAM",))] and stats["maps_computed"] == 2
    # no temporary files are left behind
    leftovers = [f for _, _, files in os.walk(tmp_path) for f in files
                 if not f.endswith(".npy") and f != attribute.MANIFEST]
    assert leftovers == []


def test_corrupt_and_missing_shards_are_named(tmp_path):
    path = attribute.shard_path(str(tmp_path), "IG", 0)
    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as fh:
        fh.write(b"not a numpy file")
    with pytest.raises(ValueError, match="shard_00000"):
        list(attribute.iter_shards(str(tmp_path), "IG", 3, 3))
    with pytest.raises(FileNotFoundError, match="Gradient"):
        list(attribute.iter_shards(str(tmp_path), "Gradient", 3, 3))


def test_explainer_maps_shapes_and_random_is_deterministic(explainers, images):
    key = jax.random.key(3)
    maps = explainers.explain(images[:2], ["Gradient", "IG", "GradCAM", "Random"], key)
    for name, m in maps.items():
        assert m.shape == (2, 32, 32) and np.all(np.isfinite(m)) and np.all(m >= 0), name
    again = explainers.explain(images[:2], ["Random"], key)["Random"]
    np.testing.assert_array_equal(again, maps["Random"])
    np.testing.assert_allclose(maps["IG"], np.abs(np.asarray(
        ap.integrated_gradients(explainers.f, images[:2], steps=3))), rtol=1e-5, atol=1e-9)


def test_method_names_and_requirements():
    with pytest.raises(ValueError, match="unknown explainer"):
        check_method_names(["Gradient", "SHAP"])
    assert required_models("SyCE:M_FI^v2") == ("syce",)
    assert required_models("MGen") == ("mgen",)
    assert required_models("GradCAM") == ()
    with pytest.raises(ValueError, match="no trained syce"):
        Explainers(f=lambda x: x.sum((1, 2, 3)), classifier=None).explain(
            np.zeros((1, 32, 32, 1), np.float32), ["SyCE:E"], jax.random.key(0))


def test_method_list_parsing_keeps_commas_inside_names():
    from advpath_jax.explain.registry import parse_method_list

    assert parse_method_list("Gradient,SyCE:E_FI,kσ^v2,CyCE:E_FI,ksigma^v2, Random") == [
        "Gradient", "SyCE:E_FI,kσ^v2", "CyCE:E_FI,kσ^v2", "Random"]
    with pytest.raises(ValueError, match="unknown explainer"):
        parse_method_list("Gradient,kσ^v2")


def test_shards_of_other_settings_are_refused(tmp_path, explainers, images):
    attribute.attribute_split(explainers.explain, images[:3], ["Random"], str(tmp_path), shard_size=3,
                              fingerprint={"steps": 3})
    # same settings: reused
    stats = attribute.attribute_split(explainers.explain, images[:3], ["Random"], str(tmp_path),
                                      shard_size=3, fingerprint={"steps": 3})
    assert stats["maps_computed"] == 0
    with pytest.raises(ValueError, match="steps differ"):
        attribute.attribute_split(explainers.explain, images[:3], ["Random"], str(tmp_path), shard_size=3,
                                  fingerprint={"steps": 50})
    with pytest.raises(ValueError, match="n_images"):
        attribute.attribute_split(explainers.explain, images, ["Random"], str(tmp_path), shard_size=3,
                                  fingerprint={"steps": 3})


def test_stored_rows_and_gather_by_split_row(tmp_path, explainers, images):
    # maps of split rows 1, 4, 5 of a 7-image split, 2 a shard: positions 0..2 of the job
    rows = np.array([1, 4, 5])
    attribute.attribute_split(explainers.explain, images[rows], ["IG"], str(tmp_path), shard_size=2, seed=1,
                              fingerprint={"rows": rows.tolist()})
    stored = attribute.StoredMaps(str(tmp_path), attribute.stored_rows(str(tmp_path), 7), 2)
    np.testing.assert_array_equal(stored.rows, rows)
    every = np.concatenate([np.load(attribute.shard_path(str(tmp_path), "IG", s)) for s in range(2)])
    np.testing.assert_array_equal(stored.gather("IG", np.array([4, 5])), every[[1, 2]])
    with pytest.raises(AdvpathError, match=r"no maps of split row\(s\) \[0, 6\]"):
        stored.gather("IG", np.array([0, 4, 6]))
    assert attribute.stored_rows(str(tmp_path / "none"), 3).tolist() == [0, 1, 2]  # no manifest: every row
    with pytest.raises(AdvpathError, match="rows"):
        attribute.stored_rows(str(tmp_path), 5)  # row 5 is outside a 5-image split


def test_shards_of_the_earlier_fixed_layout_are_refused_where_it_differs(tmp_path, explainers, images):
    # a manifest written before the layout was recorded: shards of exactly shard_size, the last shorter
    for n, refused in ((7, True), (6, False)):  # 3+3+1 differs from 3+2+2; 3+3 is the same
        out = tmp_path / str(n)
        out.mkdir()
        (out / attribute.MANIFEST).write_text(json.dumps({"n_images": n, "image_shape": [32, 32, 1],
                                                          "shard_size": 3, "seed": 0}))
        job = lambda: attribute.attribute_split(explainers.explain, images[:n], ["Random"], str(out),  # noqa: E731
                                                shard_size=3)
        if refused:
            with pytest.raises(AdvpathError, match="layout"):
                job()
        else:
            assert job()["maps_computed"] == n
    # a shard holding another number of maps than its place in the layout is named
    np.save(attribute.shard_path(str(tmp_path / "6"), "Random", 1), np.zeros((2, 32, 32), np.float32))
    with pytest.raises(AdvpathError, match="shard_00001.npy holds 2 maps, expected 3"):
        attribute.gather_rows(str(tmp_path / "6"), "Random", np.array([0]), 6, 3)
