"""Evaluation: one metrics core (``metrics``), top-K ranking of any scorer (``scorers``, ``ranking``), the
nightly offline evaluation (``offline``, ``job``) and the publication gate (``gate``)."""
