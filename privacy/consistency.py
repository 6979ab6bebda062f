"""Consistent estimates: weighted least squares over the public hierarchy of one release.

Privacy reason: this is post-processing of OpenDP's noisy outputs with their public,
data-independent noise variances; it reads nothing else, so it costs no budget (the
post-processing property of differential privacy).

Every people aggregate (a count or a sum over people) is measured for the organisation total
and for each measured breakdown (department, site, role), each breakdown *complete*: its public
groups plus a remainder cell (:data:`privacy.plan.REMAINDER`). So each breakdown's cells must
add up to the total. The noisy values do not; the least-squares estimate that does is, for
independent noise with variance σ_t² on the total y_t and σ_p² on each of the n_p cells y_pg of
breakdown p (Y_p = Σ_g y_pg):

    t̂ = (y_t/σ_t² + Σ_p Y_p/(n_p σ_p²)) / W,   W = 1/σ_t² + Σ_p 1/(n_p σ_p²)
    x̂_pg = y_pg + (t̂ − Y_p) / n_p

(for fixed t the cells of a breakdown share its discrepancy equally, since their variances are
equal; t̂ is then the inverse-variance mean of the total and each breakdown's sum). The new
variances, also public:

    var(t̂) = 1/W,   var(x̂_pg) = σ_p² (1 − 1/n_p) + 1/(W n_p²)

both never larger than before, so intervals narrow; every breakdown now adds up to the total.
The estimates stay unbiased (a linear map that is the identity on consistent inputs), and each
is normally distributed around its true value with the new variance, so the interval and
threshold rules downstream use that variance.
"""

from __future__ import annotations

import polars as pl

__all__ = ["reconcile"]


def reconcile(noisy: pl.DataFrame) -> pl.DataFrame:
    """Least-squares consistent values of the people part of ``noisy`` (other rows unchanged).

    ``noisy``: [customer_id,] part, dimension, group_value, aggregate, value, scale, sd (as
    :class:`privacy.measure.Measured` gives it). Returns the same rows and columns with
    ``value`` and ``sd`` replaced by the consistent estimate and its standard deviation, plus
    ``raw_sd`` (the noise sd before reconciliation, for reporting the gain).
    """
    keyed = "customer_id" in noisy.columns
    frame = noisy if keyed else noisy.with_columns(pl.lit("").alias("customer_id"))
    people = frame.filter(pl.col("part") == "people")
    rest = frame.filter(pl.col("part") != "people").with_columns(pl.col("sd").alias("raw_sd"))
    if people.is_empty():
        out = rest
    else:
        by = ["customer_id", "aggregate"]
        parts = (
            people.filter(pl.col("dimension") != "total")
            .group_by([*by, "dimension"])
            .agg(n=pl.len(), y_sum=pl.col("value").sum(), var=pl.col("sd").first() ** 2,
                 var_spread=pl.col("sd").max() - pl.col("sd").min())
        )  # fmt: skip
        spread = parts["var_spread"].max() if parts.height else 0.0
        if isinstance(spread, float) and spread > 1e-9:
            raise ValueError(
                "cells of one breakdown have different noise scales; their reconciliation needs equal ones"
            )
        totals = people.filter(pl.col("dimension") == "total").select(*by, y_t=pl.col("value"), var_t=pl.col("sd") ** 2)
        combined = (
            totals.join(
                parts.group_by(by).agg(
                    w_parts=(1.0 / (pl.col("n") * pl.col("var"))).sum(),
                    wy_parts=(pl.col("y_sum") / (pl.col("n") * pl.col("var"))).sum(),
                ),
                on=by, how="left",
            )
            .with_columns(pl.col("w_parts").fill_null(0.0), pl.col("wy_parts").fill_null(0.0))
            .with_columns(w=1.0 / pl.col("var_t") + pl.col("w_parts"))
            .with_columns(t_hat=(pl.col("y_t") / pl.col("var_t") + pl.col("wy_parts")) / pl.col("w"))
            .select(*by, "t_hat", "w")
        )  # fmt: skip
        adjusted = (
            people.join(combined, on=by, how="left")
            .join(parts.select(*by, "dimension", "n", "y_sum"), on=[*by, "dimension"], how="left")
            .with_columns(raw_sd=pl.col("sd"))
            .with_columns(
                value=pl.when(pl.col("dimension") == "total").then(pl.col("t_hat"))
                .otherwise(pl.col("value") + (pl.col("t_hat") - pl.col("y_sum")) / pl.col("n")),
                sd=pl.when(pl.col("dimension") == "total").then((1.0 / pl.col("w")).sqrt())
                .otherwise((pl.col("sd") ** 2 * (1 - 1 / pl.col("n")) + 1 / (pl.col("w") * pl.col("n") ** 2)).sqrt()),
            )
            .select(*frame.columns, "raw_sd")
        )  # fmt: skip
        out = pl.concat([adjusted, rest.select(*frame.columns, "raw_sd")])
    return out if keyed else out.drop("customer_id")
