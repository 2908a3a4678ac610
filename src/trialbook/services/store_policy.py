"""Who may call which method of the remote store's endpoint (``services.store_rpc``): one
``Policy`` for every name of ``store.codec.METHODS``, applied with the request's
authenticated ``core.access.Principal`` before the store is called (``Guard.call``).

A policy says which projects a call touches (found from its arguments: a project name, an
entity's project, or run ids resolved to their project with ``get_run_by_id``), the role
it needs there, and the phrase that ``Forbidden`` says the call was ("logging points needs
editor"). Roles (issue 13): a viewer reads, sealed test numbers staying sealed; an editor
also starts and logs runs, writes notes and evaluations, tags datasets, compares and
decides; an admin also changes the protocol and ships. A server admin is admin everywhere.

==========================  ===============================================================
needs                       methods
==========================  ===============================================================
viewer of the project(s)    every read naming a project or runs (``get_project``,
                            ``runs_page``, ``get_summaries`` ...); explicit run-id lists
                            (``get_summaries``, ``get_notes``, ``sparklines`` ...) need it on
                            *each* run's project
editor                      ``list_evaluations(reveal=True)`` ("reading sealed test
                            numbers"), ``create_run``, ``set_run_status``,
                            ``count_unwritten``, ``log_batch``, ``add_evaluation``,
                            ``add_artifact``, ``set_note``, ``add_decision``,
                            ``record_comparison``
admin                       ``update_protocol``, ``ship_run``
editor of some project      dataset writes (``add_dataset_version``, ``add_tagged_version``,
                            ``tag_version``, ``set_tag``): datasets belong to no project
authenticated only          dataset reads (``get_dataset_version``, ``list_dataset_versions``,
                            ``get_tag``, ``list_tags``)
anyone, creator made admin  ``create_project``, ``ensure_project`` of a new project (the
                            grant is in the call's transaction); ``ensure_project`` of an
                            existing one needs viewer
filtered to what is seen    the "everything" reads: ``list_projects``, ``find_runs``,
                            ``list_runs(None)``, ``run_names``, ``child_runs``,
                            ``list_decisions(None)``, ``project_counts``,
                            ``search_notes(project=None)``
==========================  ===============================================================

What is let through: a run id that does not exist has no project, and a project name that
does not exist has no members, so a call naming them is not refused here; the store then
raises ``NotFound`` or returns nothing (so ``get_project`` of a new name is ``NotFound`` as
a client expects before it creates the project, and nothing is leaked).

Who did it: for a principal that is not ``local``, every ``who=`` argument
(``update_protocol``, ``set_note``, ``record_comparison``, ``ship_run``) and the ``who`` of
``add_decision``'s ``Decision`` are replaced by the principal's name, whatever the client
sent. (``RunRecord`` has no field naming a user; its ``env`` is the machine's, kept as sent.)

``Principal.local`` (``trialbook ui``, an embedded book): nothing is checked or changed.

Run ids are resolved to projects through a bounded per-process cache (``RUN_CACHE_SIZE``
entries per store; a run never changes project). What a request resolves is added to the
cache only when the request is kept (``Guard.commit``), so a run created in a batch that
is rolled back is never remembered.
"""

from __future__ import annotations

import dataclasses
import inspect
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trialbook.core.access import Principal
from trialbook.errors import Conflict, Forbidden, NotFound
from trialbook.services.accounts import accounts_of
from trialbook.store.base import Store

__all__ = ["POLICIES", "RUN_CACHE_SIZE", "Guard", "Policy", "Scope", "clear_cache"]

RUN_CACHE_SIZE = 10_000
SEARCH_LIMIT = 1000  # the most notes ``search_notes`` returns (what a filtered search reads)

Arguments = dict[str, Any]


# the run id -> project cache ---------------------------------------------------------------


class _RunProjects:
    """A bounded LRU ``{run id: project name}`` of one store."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str) -> str | None:
        with self._lock:
            project = self._items.get(run_id)
            if project is not None:
                self._items.move_to_end(run_id)
            return project

    def update(self, found: Mapping[str, str]) -> None:
        with self._lock:
            for run_id, project in found.items():
                self._items[run_id] = project
                self._items.move_to_end(run_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


_CACHES: weakref.WeakKeyDictionary[Any, _RunProjects] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _cache_of(store: Any) -> _RunProjects | None:
    with _CACHES_LOCK:
        try:
            cache = _CACHES.get(store)
            if cache is None:
                cache = _CACHES[store] = _RunProjects(RUN_CACHE_SIZE)
        except TypeError:  # a store that takes no weak reference: no cache
            return None
        return cache


def clear_cache() -> None:
    """Forget every run id resolved so far (for tests)."""
    with _CACHES_LOCK:
        _CACHES.clear()


# scopes: the projects a call touches ---------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """How the projects of a call are found from its arguments: ``find(guard, arguments)``
    gives them (an unknown run id gives none); ``params`` names the arguments it reads."""

    params: tuple[str, ...]
    find: Callable[[Guard, Arguments], list[str]]

    def __call__(self, guard: Guard, arguments: Arguments) -> list[str]:
        return self.find(guard, arguments)


NOWHERE = Scope((), lambda guard, arguments: [])


def by_name(param: str) -> Scope:
    """The project named by argument ``param`` (none when it is ``None``: every project)."""

    def find(guard: Guard, arguments: Arguments) -> list[str]:
        name = arguments.get(param)
        return [] if name is None else [name]

    return Scope((param,), find)


def by_attribute(param: str, attribute: str) -> Scope:
    """The project named by ``arguments[param].<attribute>`` (``run.project``)."""

    def find(guard: Guard, arguments: Arguments) -> list[str]:
        name = getattr(arguments.get(param), attribute, None)
        return [] if name is None else [name]

    return Scope((param,), find)


def by_run(param: str, attribute: str | None = None) -> Scope:
    """The project of the run whose id is argument ``param`` (or its ``attribute``: an
    evaluation's ``run_id``)."""

    def find(guard: Guard, arguments: Arguments) -> list[str]:
        value = arguments.get(param)
        run_id = getattr(value, attribute, None) if attribute else value
        project = guard.project_of_run(run_id)
        return [] if project is None else [project]

    return Scope((param,), find)


def by_runs(param: str) -> Scope:
    """The projects of the runs of the run-id list ``param`` (each one is required). The
    list is read once here and passed on as a list."""

    def find(guard: Guard, arguments: Arguments) -> list[str]:
        ids = arguments.get(param)
        if isinstance(ids, Iterable) and not isinstance(ids, (str, bytes)):
            ids = arguments[param] = list(ids)
        else:
            return []  # not a list of ids: the store says what is wrong with it
        found = {guard.project_of_run(run_id) for run_id in ids}
        return sorted(p for p in found if p is not None)

    return Scope((param,), find)


# filters: what the principal may see of an "everything" read -----------------------------


Filter = Callable[["Guard", Arguments, Any], Any]


def _seen_projects(result: Any, guard: Guard, arguments: Arguments) -> Any:
    return [p for p in result if guard.principal.can_see(p.name)]


def _seen_by_project(result: Any, guard: Guard, arguments: Arguments) -> Any:
    return [r for r in result if guard.principal.can_see(r.project)]


def _everything(param: str, keep: Callable[[Any, Guard, Arguments], Any]) -> Filter:
    """Filter with ``keep`` only when argument ``param`` is ``None`` (a read of every
    project); a read of one project was required instead."""

    def visible(guard: Guard, arguments: Arguments, result: Any) -> Any:
        return keep(result, guard, arguments) if arguments.get(param) is None else result

    return visible


def _always(keep: Callable[[Any, Guard, Arguments], Any]) -> Filter:
    return lambda guard, arguments, result: keep(result, guard, arguments)


def _seen_run_names(result: Any, guard: Guard, arguments: Arguments) -> Any:
    return {run_id: name for run_id, name in result.items() if guard.sees_run(run_id)}


def _seen_counts(result: Any, guard: Guard, arguments: Arguments) -> Any:
    return {name: counts for name, counts in result.items() if guard.principal.can_see(name)}


def _seen_notes(result: Any, guard: Guard, arguments: Arguments) -> Any:
    return [note for note in result if guard.sees_run(note.run_id)]


# rewrites: who did it ------------------------------------------------------------------------


def _decision_who(guard: Guard, arguments: Arguments) -> None:
    decision = arguments.get("decision")
    if dataclasses.is_dataclass(decision) and not isinstance(decision, type):
        arguments["decision"] = dataclasses.replace(decision, who=guard.principal.name)


# calls the policy makes itself ---------------------------------------------------------------


Runner = Callable[["Guard", Callable[..., Any], inspect.BoundArguments], Any]


def _create_project(guard: Guard, function: Callable[..., Any], bound: inspect.BoundArguments) -> Any:
    """A new project, its creator made its admin in the same transaction."""
    with guard.store.transaction():
        project = function(*bound.args, **bound.kwargs)
        guard.made_admin(bound.arguments["name"])
    return project


def _ensure_project(guard: Guard, function: Callable[..., Any], bound: inspect.BoundArguments) -> Any:
    """An existing project needs viewer; a new one is created (its creator made its admin
    in the same transaction). Race-safe: the creation is ``create_project``, so a project
    another client made meanwhile is found by its ``Conflict``, never granted."""
    name = bound.arguments["name"]
    if not guard.project_exists(name):
        try:
            with guard.store.transaction():
                project = guard.store.create_project(name)
                guard.made_admin(name)
            return project
        except Conflict:
            pass  # made by another client meanwhile: an existing project
    guard.require(name, "viewer", "opening the project")
    return function(*bound.args, **bound.kwargs)


def _search_everywhere(guard: Guard, function: Callable[..., Any], bound: inspect.BoundArguments) -> Any:
    """``search_notes`` of every project: the best ``SEARCH_LIMIT`` matches, filtered to the
    projects seen, then cut to the ``limit`` asked (a filtered search may so find fewer
    than ``limit`` when more than ``SEARCH_LIMIT`` notes it may not see match better)."""
    if bound.arguments.get("project") is not None or guard.principal.server_admin:
        return function(*bound.args, **bound.kwargs)
    limit = bound.arguments.get("limit")
    if not isinstance(limit, int) or isinstance(limit, bool):
        return function(*bound.args, **bound.kwargs)  # the store says what is wrong with it
    bound.arguments["limit"] = SEARCH_LIMIT
    notes = _seen_notes(function(*bound.args, **bound.kwargs), guard, bound.arguments)
    return notes[: max(1, min(limit, SEARCH_LIMIT))]


# the table -----------------------------------------------------------------------------------

ROLE = ("viewer", "editor", "admin")
AUTHENTICATED = "authenticated"
EDITOR_SOMEWHERE = "editor somewhere"
CREATOR = "anyone (made admin)"
NEEDS = (*ROLE, AUTHENTICATED, EDITOR_SOMEWHERE, CREATOR)


@dataclass(frozen=True)
class Policy:
    """What one store method needs.

    ``need``: a role (``viewer``, ``editor``, ``admin``) on every project of ``scope``;
    ``AUTHENTICATED`` (any principal); ``EDITOR_SOMEWHERE`` (``editor_somewhere()``); or
    ``CREATOR`` (anyone, handled by ``run``). ``action``: what the call is, in the
    ``Forbidden`` message. ``sealed``: with ``reveal=True`` it needs editor ("reading sealed
    test numbers"). ``who``: the ``who=`` argument is replaced by the principal's name;
    ``rewrite`` changes other arguments (a ``Decision``'s ``who``). ``visible`` filters
    the result to what the principal may see; ``run`` makes the call itself."""

    need: str
    action: str
    scope: Scope = NOWHERE
    sealed: bool = False
    who: bool = False
    rewrite: Callable[[Guard, Arguments], None] | None = None
    visible: Filter | None = None
    run: Runner | None = None

    def params(self) -> set[str]:
        """The arguments the policy reads or writes (each one of the method's)."""
        return {*self.scope.params, *(("reveal",) if self.sealed else ()), *(("who",) if self.who else ())}


def _read(scope: Scope, action: str, **extra: Any) -> Policy:
    return Policy("viewer", action, scope, **extra)


def _write(need: str, scope: Scope, action: str, **extra: Any) -> Policy:
    return Policy(need, action, scope, **extra)


_DATASET_READ = Policy(AUTHENTICATED, "reading datasets")

POLICIES: dict[str, Policy] = {
    # projects
    "get_project": _read(by_name("name"), "reading the project"),
    "list_projects": _read(NOWHERE, "listing projects", visible=_always(_seen_projects)),
    "protocol_history": _read(by_name("name"), "reading the protocol's history"),
    "ensure_project": Policy(CREATOR, "creating a project", by_name("name"), run=_ensure_project),
    "create_project": Policy(CREATOR, "creating a project", by_name("name"), run=_create_project),
    "update_protocol": _write("admin", by_name("name"), "changing the protocol", who=True),
    # runs
    "get_run": _read(by_name("project"), "reading a run"),
    "get_run_by_id": _read(by_run("run_id"), "reading a run"),
    "find_runs": _read(NOWHERE, "finding runs", visible=_always(_seen_by_project)),
    "list_runs": _read(by_name("project"), "listing runs", visible=_everything("project", _seen_by_project)),
    "get_runs_by_name": _read(by_name("project"), "reading runs"),
    "run_names": _read(NOWHERE, "naming runs", visible=_always(_seen_run_names)),
    "child_runs": _read(NOWHERE, "listing child runs", visible=_always(_seen_by_project)),
    "create_run": _write("editor", by_attribute("run", "project"), "starting a run"),
    "set_run_status": _write("editor", by_run("run_id"), "setting a run's status"),
    "count_unwritten": _write("editor", by_run("run_id"), "counting a run's unwritten points"),
    # metrics
    "log_batch": _write("editor", by_run("run_id"), "logging points"),
    "get_summaries": _read(by_runs("run_ids"), "reading metrics"),
    "get_history": _read(by_runs("run_ids"), "reading metrics"),
    "get_all_history": _read(by_run("run_id"), "reading metrics"),
    "history_since": _read(by_runs("run_ids"), "reading metrics"),
    # records
    "add_evaluation": _write("editor", by_run("evaluation", "run_id"), "recording an evaluation"),
    "list_evaluations": _read(by_runs("run_ids"), "reading evaluations", sealed=True),
    "add_artifact": _write("editor", by_run("artifact", "run_id"), "recording an artifact"),
    "list_artifacts": _read(by_run("run_id"), "listing artifacts", sealed=True),
    "set_note": _write("editor", by_run("run_id"), "writing a note", who=True),
    "get_notes": _read(by_runs("run_ids"), "reading notes"),
    "note_history": _read(by_run("run_id"), "reading a note's history"),
    "search_notes": _read(by_name("project"), "searching notes", run=_search_everywhere),
    # decisions
    "add_decision": _write(
        "editor", by_attribute("decision", "project"), "recording a decision", rewrite=_decision_who
    ),
    "list_decisions": _read(
        by_name("project"), "listing decisions", visible=_everything("project", _seen_by_project)
    ),
    "find_decision": _read(by_name("project"), "reading decisions"),
    "record_comparison": _write("editor", by_name("project"), "recording a comparison", who=True),
    "first_comparison_at": _read(by_name("project"), "reading comparisons"),
    "ship_run": _write("admin", by_name("project"), "shipping a run", who=True),
    "list_ships": _read(by_name("project"), "listing ships"),
    # datasets
    "add_dataset_version": Policy(EDITOR_SOMEWHERE, "recording a dataset version"),
    "add_tagged_version": Policy(EDITOR_SOMEWHERE, "tagging a dataset"),
    "tag_version": Policy(EDITOR_SOMEWHERE, "tagging a dataset"),
    "set_tag": Policy(EDITOR_SOMEWHERE, "tagging a dataset"),
    "get_dataset_version": _DATASET_READ,
    "list_dataset_versions": _DATASET_READ,
    "get_tag": _DATASET_READ,
    "list_tags": _DATASET_READ,
    # queries
    "run_rows": _read(by_name("project"), "listing runs"),
    "runs_page": _read(by_name("project"), "listing runs"),
    "project_counts": _read(NOWHERE, "counting runs", visible=_always(_seen_counts)),
    "project_datasets": _read(by_name("project"), "reading the project's datasets"),
    "series_keys": _read(by_runs("run_ids"), "reading metric keys"),
    "sparklines": _read(by_runs("run_ids"), "reading metrics"),
}


# the guard of one request ----------------------------------------------------------------------


class Guard:
    """The policies applied to the calls of one request (one call, or one batch) of
    ``principal`` on ``store``. ``principal`` gains ``admin`` on the projects it creates
    in the request, so that a batch creating a project can set its protocol."""

    def __init__(self, store: Store, principal: Principal) -> None:
        self.store = store
        self.principal = principal
        self._cache = _cache_of(store)
        self._found: dict[str, str] = {}  # resolved in this request, kept by commit()

    # the call ---------------------------------------------------------------------------
    def call(self, method: str, function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
        """``function(*args, **kwargs)`` (the store's ``method``) as the policy allows it:
        ``Forbidden`` when it does not, arguments naming who replaced, the result
        filtered. The arguments must fit the function (``store_rpc`` checks)."""
        if self.principal.local:
            return function(*args, **kwargs)
        policy = POLICIES.get(method)
        if policy is None:  # fail closed: a store method added to codec.METHODS without one
            raise Forbidden(f"the store method {method} has no access policy: nobody may call it")
        bound = inspect.signature(function).bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        self._check(policy, arguments)
        if policy.who:
            arguments["who"] = self.principal.name
        if policy.rewrite is not None:
            policy.rewrite(self, arguments)
        if policy.run is not None:
            return policy.run(self, function, bound)
        result = function(*bound.args, **bound.kwargs)
        if policy.visible is not None and not self.principal.server_admin:
            result = policy.visible(self, arguments, result)
        return result

    def _check(self, policy: Policy, arguments: Arguments) -> None:
        if policy.need == EDITOR_SOMEWHERE:
            if not self.principal.editor_somewhere():
                name = self.principal.name
                raise Forbidden(
                    f"{name} is editor of no project; {policy.action} needs editor of some project "
                    f"(datasets belong to no project; an admin of a project can grant it: "
                    f"trialbook admin grant {name} PROJECT editor)"
                )
            return
        if policy.need not in ROLE or self.principal.server_admin:
            return  # AUTHENTICATED, or CREATOR (its run checks); a server admin is admin
        role, action = policy.need, policy.action
        if policy.sealed and arguments.get("reveal"):
            role, action = "editor", "reading sealed test numbers"
        for project in policy.scope(self, arguments):
            self.require(project, role, action)

    def commit(self) -> None:
        """Remember the runs this request resolved (call once its work is kept)."""
        if self._cache is not None and self._found:
            self._cache.update(self._found)
        self._found = {}

    # what the policies use --------------------------------------------------------------
    def require(self, project: str, role: str, action: str) -> None:
        """``Principal.require``, but a project that does not exist is let through (the
        store then says ``NotFound``, or finds nothing)."""
        if self.principal.can(project, role):
            return
        if not isinstance(project, str) or not self.project_exists(project):
            return
        self.principal.require(project, role, action)

    def project_exists(self, name: str) -> bool:
        try:
            self.store.get_project(name)
        except NotFound:
            return False
        return True

    def project_of_run(self, run_id: Any) -> str | None:
        """The project of run ``run_id``; ``None`` for a run that does not exist."""
        if not isinstance(run_id, str):
            return None
        project = self._found.get(run_id)
        if project is None and self._cache is not None:
            project = self._cache.get(run_id)
        if project is None:
            try:
                project = self.store.get_run_by_id(run_id).project
            except NotFound:
                return None
            self._found[run_id] = project
        return project

    def sees_run(self, run_id: Any) -> bool:
        project = self.project_of_run(run_id)
        return project is not None and self.principal.can_see(project)

    def made_admin(self, project: str) -> None:
        """Make the principal admin of ``project``, which it just created (inside the
        creation's transaction), for the database and for the rest of the request."""
        name = self.principal.name
        accounts_of(self.store).grant(name, project, "admin", who=name)
        if not self.principal.server_admin:
            roles = {**self.principal.roles, project: "admin"}
            self.principal = dataclasses.replace(self.principal, roles=roles)
