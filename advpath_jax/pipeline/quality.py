"""Model quality gates: is each trained model good enough for its explanations to mean anything?

The paper explains a strong classifier (test AUC 0.975) with generators that do what their
definitions say (the adversary changes the predicted class, the stable image keeps it).
After each model is trained (or reused), :func:`gate_rows` compares its figures (from
``WORKDIR/<model>/DONE.json``) with a bar; a figure under its bar gives a warning that the
run prints and that heads ``report.md``. ``advpath run --strict`` turns a shortfall into an
error (exit status 2) as soon as the model is known, before anything is trained against it.

Bars (``eval.quality_bars`` overrides them by ``"model.figure"`` key, e.g.
``{"classifier.auc": 0.95}``):

====================  =====================  ====
model.figure          meaning                bar
====================  =====================  ====
classifier.auc        test ROC AUC           0.90
cyce.flip_rate        f(x_a) changes class   0.90
syce.flip_rate        f(x_a) changes class   0.90
syce.keep_rate        f(x_s) keeps it        0.90
sagen.flip_rate       f(x_a) changes class   0.90
sagen.keep_rate       f(x_s) keeps it        0.90
mgen.flip_rate        destroyed image flips  0.80
translator.flip_rate  translation flips      0.90
====================  =====================  ====
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

from advpath_jax.errors import AdvpathError
from advpath_jax.pipeline.markdown import md_cell


@dataclasses.dataclass(frozen=True)
class Gate:
    """A bar on one figure of one model (higher is better)."""

    model: str
    figure: str
    label: str
    bar: float
    consequence: str

    @property
    def key(self) -> str:
        return f"{self.model}.{self.figure}"


_FLIP = "its adversaries do not reach the other class, so its path ends inside the class it explains"
_KEEP = "its start images x_s lose the predicted class, so its path starts in the other class"
DEFAULT_GATES: tuple[Gate, ...] = (
    Gate("classifier", "auc", "test AUC", 0.90, "the explanations below describe a weak classifier"),
    Gate("cyce", "flip_rate", "flip rate", 0.90, _FLIP),
    Gate("syce", "flip_rate", "flip rate", 0.90, _FLIP),
    Gate("syce", "keep_rate", "keep rate", 0.90, _KEEP),
    Gate("sagen", "flip_rate", "flip rate", 0.90, _FLIP),
    Gate("sagen", "keep_rate", "keep rate", 0.90, _KEEP),
    Gate("mgen", "flip_rate", "flip rate of the destroyed image", 0.80,
         "its masks do not remove the evidence the classifier uses"),
    Gate("translator", "flip_rate", "flip rate", 0.90,
         "AOPC replaces regions with translations that keep the class, so AOPC understates every method"),
)
#: figures shown beside the gated ones, without a bar: ``{model: ((figure, label), ...)}``
INFO_FIGURES: dict[str, tuple[tuple[str, str], ...]] = {
    "classifier": (("accuracy", "test accuracy at 0.5"), ("val_best_threshold", "best validation threshold")),
    "cyce": (("mean_abs_adv", "mean |x_a - x|"),),
    "syce": (("mean_abs_adv", "mean |x_a - x|"), ("mean_abs_start", "mean |x_s - x|")),
    "sagen": (("mean_abs_adv", "mean |x_a - x|"), ("mean_abs_start", "mean |x_s - x|")),
    "mgen": (("mean_mask_area", "mean mask area"),),
    "translator": (("mean_abs_change", "mean |x' - x|"),),
}
MODEL_NAMES = {"classifier": "classifier", "cyce": "CyCE", "syce": "SyCE", "sagen": "SAGen",
               "mgen": "MGen", "translator": "AOPC translator"}


def gates_for(bars: Mapping[str, float] | None = None) -> tuple[Gate, ...]:
    """The default gates with bars replaced by ``bars`` (``{"model.figure": bar}``)."""
    bars = dict(bars or {})
    known = {g.key for g in DEFAULT_GATES}
    unknown = sorted(set(bars) - known)
    if unknown:
        raise AdvpathError(f"eval.quality_bars: unknown figure(s) {unknown}; known: {sorted(known)}")
    return tuple(dataclasses.replace(g, bar=float(bars[g.key])) if g.key in bars else g for g in DEFAULT_GATES)


def gate_rows(model: str, metrics: Mapping[str, Any], gates: Sequence[Gate] = DEFAULT_GATES) -> list[dict]:
    """One row per gate of ``model``: ``{model, figure, label, value, bar, ok}``.

    A gated figure missing from ``metrics`` gives ``value None`` and ``ok False`` (not measured
    is not passed); the model's :data:`INFO_FIGURES` follow with ``bar None``."""
    rows = []
    for g in (g for g in gates if g.model == model):
        value = metrics.get(g.figure)
        value = float(value) if isinstance(value, (int, float)) else None
        rows.append({"model": model, "figure": g.figure, "label": g.label, "value": value,
                     "bar": g.bar, "ok": value is not None and value >= g.bar})
    if rows:  # a gated model: its other figures too, without a bar (they always pass)
        for figure, label in INFO_FIGURES.get(model, ()):
            value = metrics.get(figure)
            if isinstance(value, (int, float)):
                rows.append({"model": model, "figure": figure, "label": label, "value": float(value),
                             "bar": None, "ok": True})
    return rows


def all_rows(model_metrics: Mapping[str, Mapping[str, Any]], gates: Sequence[Gate] = DEFAULT_GATES) -> list[dict]:
    """Gate rows of every model in ``model_metrics`` (``{model: DONE.json contents}``)."""
    return [row for model, metrics in model_metrics.items() for row in gate_rows(model, metrics, gates)]


def warning(row: Mapping[str, Any], gates: Sequence[Gate] = DEFAULT_GATES) -> str:
    """The sentence for a row under its bar."""
    gate = next(g for g in gates if g.model == row["model"] and g.figure == row["figure"])
    name = MODEL_NAMES.get(row["model"], row["model"])
    if row["value"] is None:
        return f"the {name}'s {row['label']} was not measured: its quality is unknown"
    return f"the {name}'s {row['label']} is {row['value']:.2f} < {row['bar']:.2f}: {gate.consequence}"


def summary(rows: Sequence[Mapping[str, Any]], gates: Sequence[Gate] = DEFAULT_GATES) -> dict:
    """``{"rows", "warnings", "passed"}`` as stored in results.json under ``quality``."""
    warnings = [warning(r, gates) for r in rows if not r["ok"]]
    return {"rows": [dict(r) for r in rows], "warnings": warnings, "passed": not warnings}


def table_md(quality: Mapping[str, Any]) -> list[str]:
    """Markdown lines: the table of figures against their bars, then one warning per shortfall."""
    lines = ["## Model quality", "",
             "Each trained model's figure on the test split against the bar it must reach for its "
             "explanations to be meaningful.", "",
             "| model | figure | value | bar | |", "|---|---|---:|---:|---|"]
    for r in quality["rows"]:
        value = "not measured" if r["value"] is None else f"{r['value']:.3f}"
        bar = "" if r["bar"] is None else f"{r['bar']:.2f}"
        status = "" if r["bar"] is None else ("ok" if r["ok"] else "**below the bar**")
        lines.append(f"| {md_cell(MODEL_NAMES.get(r['model'], r['model']))} | {md_cell(r['label'])} | {value} | {bar} "
                     f"| {status} |")
    lines.append("")
    for text in quality["warnings"]:
        lines.append(f"> **Warning:** {text}.")
    if quality["warnings"]:
        lines.append("")
    return lines


def table_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as aligned plain text for the console."""
    out = []
    for r in rows:
        value = "   n/a" if r["value"] is None else f"{r['value']:6.3f}"
        gate = "" if r["bar"] is None else f"  (bar {r['bar']:.2f})  " + ("ok" if r["ok"] else "BELOW THE BAR")
        out.append(f"  {MODEL_NAMES.get(r['model'], r['model']):<16} {r['label']:<34} {value}{gate}")
    return "\n".join(out)


def check(model: str, metrics: Mapping[str, Any], gates: Sequence[Gate], *, strict: bool,
          where: str = "") -> list[dict]:
    """Print ``model``'s gate rows and warnings; with ``strict`` raise on a shortfall.

    Returns the rows. ``where``: the file the figures come from, named in the error."""
    rows = gate_rows(model, metrics, gates)
    if not rows:
        return rows
    print(f"[quality] {MODEL_NAMES.get(model, model)}:\n{table_text(rows)}")
    failed = [r for r in rows if not r["ok"]]
    for r in failed:
        print(f"[quality] WARNING: {warning(r, gates)}")
    if strict and failed:
        texts = "; ".join(warning(r, gates) for r in failed)
        raise AdvpathError(f"--strict: {texts}" + (f" (figures from {where})" if where else ""))
    return rows
