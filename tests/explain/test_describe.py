"""Explainers.describe(): what the run records about GradCAM's stage and MPert's settings."""

from advpath_jax.explain.registry import Explainers


def test_describe_reports_gradcam_stage_and_mpert_settings():
    ex = Explainers(f=None, classifier=None, image_hw=(64, 64), steps=50, rule="midpoint",
                    mpert_kwargs={"lambda1": 0.1, "lambda2": 0.4, "steps": 150},
                    mpert_selection={"lambda1": 0.1, "lambda2": 0.4, "met_target": True})
    d = ex.describe()
    assert d["path"] == {"steps": 50, "rule": "midpoint"}
    assert (d["gradcam"]["stage"], d["gradcam"]["feature_hw"], d["gradcam"]["rule"]) == (
        2, [8, 8], "deepest stage at least 7x7")
    m = d["mpert"]
    assert (m["objective"], m["lambda1"], m["lambda2"], m["steps"], m["mask_hw"]) == (
        "log_complement", 0.1, 0.4, 150, [16, 16])
    assert m["selection"]["met_target"] is True
    big = Explainers(f=None, classifier=None, image_hw=(224, 224), gradcam_stage=3).describe()
    assert (big["gradcam"]["stage"], big["gradcam"]["feature_hw"], big["gradcam"]["rule"]) == (3, [14, 14], "configured")
    assert Explainers(f=None, classifier=None, image_hw=(224, 224)).describe()["gradcam"]["stage"] == 4
