"""Where measurements run: in this process, or spread over a Ray cluster.

The loop hands a backend the oracle's measuring function and the new cells of one batch;
the oracle keeps the accounting and records answers in batch order, so the history is
the same whichever backend measured it. Ray is an optional extra (``gennas[ray]``):
``RayBackend()`` starts or joins a local instance, ``RayBackend(address="ray://host:10001")``
a real cluster.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

from gennas.errors import GennasError


class EvaluationBackend(Protocol):
    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]: ...


class SerialBackend:
    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return [fn(item) for item in items]


class RayBackend:
    """One Ray task per cell; ``num_cpus`` per task keeps trainings from oversubscribing a node."""

    def __init__(self, address: str | None = None, num_cpus_per_task: float = 1.0, **init_kwargs: Any) -> None:
        try:
            import ray
        except ImportError:
            raise GennasError("the Ray backend needs Ray: pip install 'gennas[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, **init_kwargs)
        self.num_cpus = num_cpus_per_task

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        remote = self.ray.remote(num_cpus=self.num_cpus)(_call)
        fn_ref = self.ray.put(fn)  # the oracle (with its data) is shipped once per batch
        return self.ray.get([remote.remote(fn_ref, item) for item in items])

    def shutdown(self) -> None:
        self.ray.shutdown()


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    from gennas.threads import configure_threads

    configure_threads()  # Ray sets OMP_NUM_THREADS to the task's num_cpus: one thread per 1-CPU worker
    return fn(item)


def get_backend(name: str, address: str | None = None) -> EvaluationBackend:
    if name == "serial":
        return SerialBackend()
    if name == "ray":
        return RayBackend(address)
    raise GennasError(f"unknown backend {name!r}; choose 'serial' or 'ray'")
