"""Metrics: the registry, and the cost metrics computed from networks (FLOPs, params, memory, latency)."""

from gennas.metrics.costs import COST_METRICS, CostTable, cell_costs, measured_costs
from gennas.metrics.flops import analytic_flops_params, count_flops, count_params
from gennas.metrics.latency import measure_latency
from gennas.metrics.memory import analytic_peak_memory, measure_peak_memory
from gennas.metrics.registry import Metric, all_metrics, get_metric, register_metric
from gennas.metrics.task import Task, metric_of, task_name

__all__ = [
    "COST_METRICS", "CostTable", "Metric", "all_metrics", "analytic_flops_params", "analytic_peak_memory",
    "cell_costs", "count_flops", "count_params", "get_metric", "measure_latency", "measure_peak_memory",
    "measured_costs", "metric_of", "register_metric", "Task", "task_name",
]
