"""Before/after experiments with honest statistics: ``Experiment(baseline, candidate).run()``.

See ``deskprof experiment --help`` for a staging run end to end.
"""

from deskprof.experiment.design import Design
from deskprof.experiment.result import ExperimentResult, load_result
from deskprof.experiment.runner import Experiment, flush_redis
from deskprof.experiment.variants import Variant

__all__ = ["Design", "Experiment", "ExperimentResult", "Variant", "flush_redis", "load_result"]
