"""Judging the numbers: confidence intervals, funnel limits, whether a difference from the
benchmark is real, and the finding rules that say where a service should adapt."""
