"""One idempotent reconcile: render -> server-side apply -> prune -> status.

Reads come from the watch cache; writes happen only when something differs: an object is
applied only if the live one does not already contain every desired field, and status is
patched only when it changed. A quiet cluster therefore sees no writes from the operator.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic

from llmstage import logs
from llmstage.api.defaults import ServingDefaults
from llmstage.api.models import LLMService
from llmstage.api.quantity import parse_quantity
from llmstage.api.validation import validation_message
from llmstage.controller import metrics
from llmstage.controller.cache import ServiceKey, WatchCache
from llmstage.controller.conditions import (
    READY,
    RECONCILING,
    STALLED,
    Condition,
    event_for,
    event_worthy,
    merge_conditions,
)
from llmstage.controller.config import DEFAULT_UNSCHEDULABLE_GRACE
from llmstage.controller.kube import KINDS, ApiError, Kube, kind_of
from llmstage.controller.observed import Observed
from llmstage.controller.plan import plan
from llmstage.controller.rendercache import RenderCache
from llmstage.resolve import SpecError, resolve
from llmstage.resolve.resolved import ClusterFacts, Resolved
from llmstage.resolve.tenancy import TenancyPolicy, tenancy_problem

log = logging.getLogger(__name__)

LLMSERVICE = KINDS[("llmstage.io/v1alpha1", "LLMService")]
EVENT = KINDS[("v1", "Event")]
# An apply the API server rejects as invalid (422) or forbids (403) will not fix itself.
PERMANENT_API_ERRORS = {400, 403, 422}


# status fields that follow the Deployment's replica counts.
COUNT_FIELDS = ("replicas", "readyReplicas")


@dataclass(frozen=True)
class Settings:
    """The reconciler's part of the OperatorConfig (controller/config.py), and its own timing."""

    unschedulable_grace: float = DEFAULT_UNSCHEDULABLE_GRACE
    # While a service is Reconciling, a status write that would change only the replica counts
    # waits for the next write with news (a condition, a step) for at most this long, counted
    # from the first count it held back; checked at the next reconcile, no timer of its own.
    counts_max_lag: float = 120.0
    # What spec.pod may add to the serving pods (the cluster admin's; resolve/tenancy.py).
    tenancy: TenancyPolicy = dataclasses.field(default_factory=TenancyPolicy)
    # The install's serving defaults (`llmstage run --defaults FILE`), read once at start.
    serving_defaults: ServingDefaults | None = None


def only_counts_differ(current: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when writing `new` over `current` would change the replica counts and nothing else."""
    changed = {k for k, v in new.items() if current.get(k) != v}
    return bool(changed) and changed <= set(COUNT_FIELDS)


def progressing(conditions: list[dict[str, Any]]) -> bool:
    return any(c["type"] == RECONCILING and c["status"] == "True" for c in conditions)


def contains(live: Any, desired: Any) -> bool:
    """True when every field of `desired` has the same value in `live` (server defaults and
    fields other managers added are ignored)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    if isinstance(desired, bool) or isinstance(live, bool):
        return live is desired
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return float(live) == float(desired)
    if isinstance(desired, int | float) != isinstance(live, int | float):
        # A number we send as a quantity (limits nvidia.com/gpu: 1) comes back as the string
        # "1"; without this the vLLM Deployment was re-applied on every reconcile.
        return _same_quantity(live, desired)
    return bool(live == desired)


def _same_quantity(a: Any, b: Any) -> bool:
    if not isinstance(a, str | int | float) or not isinstance(b, str | int | float):
        return False
    try:
        # A float (never rendered by us, but JSON allows it) compares by its shortest text.
        return bool(parse_quantity(_text(a)) == parse_quantity(_text(b)))
    except ValueError:
        return False


def _text(value: str | int | float) -> str | int:
    return repr(value) if isinstance(value, float) else value


def keep_immutable_claim_fields(desired: dict[str, Any], live: dict[str, Any]) -> None:
    """A bound claim's spec is immutable except its size, which may only grow. Keep the live
    access modes, class and mode (scaling 1 -> 2 replicas must not try to turn an RWO cache into
    RWX and fail), and never ask for a smaller size than the claim has."""
    spec, live_spec = desired["spec"], live.get("spec") or {}
    for field in ("accessModes", "storageClassName", "volumeMode"):
        if field in live_spec:
            spec[field] = live_spec[field]
        else:
            spec.pop(field, None)
    want = spec.get("resources", {}).get("requests", {}).get("storage")
    have = live_spec.get("resources", {}).get("requests", {}).get("storage")
    if want and have and parse_quantity(want) < parse_quantity(have):
        spec["resources"]["requests"]["storage"] = have


def namespace_going_away(err: ApiError) -> bool:
    """Writes into a namespace that is being deleted fail with 403 or 404; nothing to repair."""
    return (err.status == 403 and "being terminated" in err.message) or (
        err.status == 404 and err.message.startswith("namespaces ")
    )


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Reconciler:
    def __init__(
        self, kube: Kube, cache: WatchCache, facts: ClusterFacts, settings: Settings | None = None
    ) -> None:
        self.kube, self.cache, self.facts = kube, cache, facts
        self.settings = settings or Settings()
        self.renders = RenderCache()
        # Services whose count-only status change is held back, and since when (monotonic).
        self.counts_held: dict[ServiceKey, float] = {}

    async def __call__(self, key: ServiceKey) -> float | None:
        started = time.perf_counter()
        result = "error"
        # Every line this pass logs names the service and the pass (JSON fields, see llmstage.logs).
        with logs.log_context(namespace=key[0], name=key[1], reconcile_id=uuid.uuid4().hex[:12]):
            try:
                requeue, result = await self.reconcile(key)
                return requeue
            finally:
                metrics.RECONCILES.labels(result=result).inc()
                metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)

    async def reconcile(self, key: ServiceKey) -> tuple[float | None, str]:
        body = self.cache.service(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            self.renders.forget(key)
            self.counts_held.pop(key, None)
            return None, "gone"  # the garbage collector removes the children
        generation = body["metadata"].get("generation", 0)
        logs.annotate(generation=generation)
        log.debug("reconciling %s/%s generation %s", key[0], key[1], generation)
        now = now_utc()
        try:
            service = LLMService.from_object(body)
            # Before anything is resolved or rendered: nothing is applied for a refused spec.
            if problem := tenancy_problem(service, self.settings.tenancy):
                raise problem
            resolved = resolve(service, serving_defaults=self.settings.serving_defaults)
        except SpecError as problem:
            await self._stall(body, "InvalidSpec", str(problem), now)
            return None, "stalled"
        except pydantic.ValidationError as err:
            await self._stall(body, "InvalidSpec", validation_message(err), now)
            return None, "stalled"

        observed = Observed(
            children=self.cache.children_of(key),
            endpoint_slices=list(self.cache.slices.get(key, {}).values()),
            pods=list(self.cache.pods.get(key, {}).values()),
            pod_claims=dict(self.cache.pod_claims.get(key, {})),
            benchmark=self.cache.benchmarks.get(key),
        )
        p = plan(
            resolved,
            observed,
            now,
            facts=self.facts,
            unschedulable_grace=self.settings.unschedulable_grace,
            render=self.renders,
        )
        try:
            await self._apply(resolved, p.apply, observed)
            wanted = {(o["kind"], o["metadata"]["name"]) for o in p.apply} | p.keep
            await self._prune(key, wanted, observed.children)
        except ApiError as err:
            metrics.API_ERRORS.labels(status=str(err.status)).inc()
            if namespace_going_away(err):
                return None, "gone"  # the namespace and this LLMService with it are being deleted
            if err.status in PERMANENT_API_ERRORS or err.rejected_object:
                await self._stall(
                    body,
                    "ApplyRejected",
                    f"the API server rejected a child object: {err}. "
                    "Check the fields it names (spec.vllm.extraArgs, spec.scheduling, ...)",
                    now,
                )
                return None, "stalled"
            raise
        await self._write_status(body, p.conditions, p.status, generation, now)
        stalled = any(c.type == STALLED and c.status == "True" for c in p.conditions)
        return p.requeue_after, "stalled" if stalled else "ok"

    async def _apply(self, resolved: Resolved, objects: list[dict[str, Any]], observed: Observed) -> None:
        for obj in objects:  # rendered with their ownerReference (llmstage.render.desired)
            live = observed.get(obj["kind"], obj["metadata"]["name"])
            if obj["kind"] == "PersistentVolumeClaim" and live is not None:
                keep_immutable_claim_fields(obj, live)
            if live is not None and contains(live, obj):
                log.debug("%s %s is up to date", obj["kind"], obj["metadata"]["name"])
                continue
            if obj["kind"] not in {k.kind for k in KINDS.values()}:
                continue
            applied = await self.kube.apply(obj)
            metrics.APPLIES.labels(kind=obj["kind"]).inc()
            self.cache.put_child(applied)
            log.info("applied %s %s/%s", obj["kind"], resolved.namespace, obj["metadata"]["name"])

    async def _prune(
        self, key: ServiceKey, wanted: set[tuple[str, str]], children: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        for (kind, name), live in children.items():
            if (kind, name) in wanted or live["metadata"].get("deletionTimestamp"):
                continue
            k = kind_of(live)
            if await self.kube.delete(k, key[0], name, uid=live["metadata"].get("uid")):
                metrics.DELETES.labels(kind=kind).inc()
                log.info("pruned %s %s/%s", kind, key[0], name)

    async def _stall(self, body: dict[str, Any], reason: str, message: str, now: datetime) -> None:
        conditions = [
            Condition(READY, "False", reason, message),
            Condition(RECONCILING, "False", reason, ""),
            Condition(STALLED, "True", reason, message),
        ]
        # Keep what is known (runtime, endpoint, ...) and the spec-derived conditions as they were.
        current = body.get("status") or {}
        kept = [
            c for c in current.get("conditions") or [] if c.get("type") not in (READY, RECONCILING, STALLED)
        ]
        merged = (
            merge_conditions(
                current.get("conditions") or [], conditions, body["metadata"].get("generation", 0), now
            )
            + kept
        )
        await self._patch_status(body, merged, {}, body["metadata"].get("generation", 0))

    async def _write_status(
        self,
        body: dict[str, Any],
        conditions: list[Condition],
        fields: dict[str, Any],
        generation: int,
        now: datetime,
    ) -> None:
        current = body.get("status") or {}
        merged = merge_conditions(current.get("conditions") or [], conditions, generation, now)
        key = body["metadata"]["namespace"], body["metadata"]["name"]
        new = {**fields, "conditions": merged, "observedGeneration": generation}
        if progressing(merged) and only_counts_differ(current, new):
            # A starting service's counts change a moment before its conditions do (pod created,
            # then ready, then behind the Service): one write with both instead of three. Ready
            # itself is never held back (docs/benchmarks.md).
            since = self.counts_held.setdefault(key, time.monotonic())
            if time.monotonic() - since < self.settings.counts_max_lag:
                return
        self.counts_held.pop(key, None)
        await self._patch_status(body, merged, fields, generation)

    async def _patch_status(
        self, body: dict[str, Any], conditions: list[dict[str, Any]], fields: dict[str, Any], generation: int
    ) -> None:
        current = body.get("status") or {}
        new = {**fields, "conditions": conditions, "observedGeneration": generation}
        if all(current.get(k) == v for k, v in new.items() if v is not None) and all(
            current.get(k) is None for k, v in new.items() if v is None
        ):
            return
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        try:
            patched = await self.kube.patch_status(LLMSERVICE, namespace, name, new)
        except ApiError as err:
            if err.not_found:
                return
            raise
        metrics.STATUS_WRITES.inc()
        self.cache.put_service(patched)
        for cond in event_worthy(current.get("conditions") or [], conditions):
            await self._event(body, cond)

    async def _event(self, body: dict[str, Any], cond: dict[str, Any]) -> None:
        meta = body["metadata"]
        event = event_for(body, cond, now_utc())
        try:
            await self.kube.create(EVENT, meta["namespace"], event)
        except ApiError as err:  # an Event is best effort; status already says it
            # Failing while the namespace is being deleted is expected; anything else is worth a warning.
            level = logging.DEBUG if namespace_going_away(err) else logging.WARNING
            log.log(level, "could not record event for %s/%s: %s", meta["namespace"], meta["name"], err)
