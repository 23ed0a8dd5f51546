"""advpath_jax.explain: every explainer of the paper behind one registry.

* :mod:`~advpath_jax.explain.registry`: ``Explainers.explain(x, names, key)``, the registry
  (``register_explainer``) and the built-in explainers (Gradient, IG, GradCAM, MPert, MGen,
  SAGen, the CyCE/SyCE path maps, SyCE's manifold maps, Random);
* :mod:`~advpath_jax.explain.mpert`: MPert's per-image mask optimisation and the choice of its λ's.

The models come from :mod:`advpath_jax.store`, generator and MGen inference from
:mod:`advpath_jax.generators`; nothing here imports training.
"""
