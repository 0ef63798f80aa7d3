"""Example queries over the views, offered on the UI's SQL page (and a start for psql).

They are text a user edits and runs read-only (`catalogue.db.readonly.run_readonly`);
the headline's thresholds come from `catalogue.measures.CRITERIA`.
"""

from __future__ import annotations

from catalogue.query.report import HEADLINE_SQL

EXAMPLES: dict[str, str] = {
    "Precision detectors with high false-alarm rates (the paper's headline)": HEADLINE_SQL,
    "Each measure per layer": (
        "SELECT model, layer, measure, n, mean, median, q1, q3\n"
        "FROM layer_summary\n"
        "ORDER BY model, layer_position, measure"
    ),
    "The bus group (school bus + trolleybus + minibus)": (
        "SELECT m.name AS model, l.name AS layer, u.unit_index AS unit, g.run_id,\n"
        "       cg.version AS group_version,\n"
        "       g.precision, g.ccmas, g.max_informedness, g.mi_threshold,\n"
        "       g.n_nonzero_in, g.n_nonzero_out, g.mu_in, g.mu_out\n"
        "FROM unit_group_metrics g\n"
        "JOIN class_group cg ON cg.id = g.group_id\n"
        "JOIN unit u ON u.id = g.unit_id\n"
        "JOIN layer l ON l.id = u.layer_id\n"
        "JOIN model m ON m.id = l.model_id\n"
        "WHERE cg.name = 'bus'\n"
        "ORDER BY g.max_informedness DESC\n"
        "LIMIT 20"
    ),
    "Correlations between measures": (
        "SELECT layer, measure_a, measure_b, n, pearson, spearman\n"
        "FROM measure_correlations\n"
        "WHERE measure_a = 'precision'\n"
        "ORDER BY layer, measure_b"
    ),
    "Human ratings per layer": "SELECT * FROM rating_layer_summary ORDER BY model, layer_position",
}
