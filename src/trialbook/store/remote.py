"""``RemoteStore``: the ``Store`` interface of a book on a trialbook server, over HTTP.

Each method is one ``POST {server}/api/v1/store/{method}`` (the server's
``services.store_rpc``), its arguments and result in the wire format of ``store.codec``,
so the Python API, the CLI and the importers run unchanged on a server's book. Errors the
server's store raises (``NotFound``, ``Conflict``, ``InvalidInput`` ...) are raised here as
the same class with the same message; a server that cannot be reached, that does not
answer in time or answers 5xx raises ``StorageError`` naming the server (the API then
spools what it could not write).

One ``httpx.Client`` per store (connections kept alive), timeouts 5 s to connect and 60 s
to read; the token (``settings.token(uri)``: ``$TRIALBOOK_TOKEN``, else the one
``trialbook login`` stored for the server) goes in ``Authorization: Bearer ...``.

A 401 is ``Unauthorized`` (no token, or one the server does not take: unknown, expired,
revoked), saying how to give one; a 403 is ``Forbidden`` with the server's message (it
names the role needed). Both are answers about the caller, not faults: never retried,
never spooled. The token is never in a message, a warning or a repr.

Transactions. ``transaction()`` keeps its promise, all or nothing, over a stateless
server: inside the block, the writes are not sent one by one but kept, in order, and sent
at the end of the outermost block as one batch (``POST /api/v1/store/_batch``) that the
server runs in one store transaction. A call inside the block that needs an answer (a
read after a write, a write that returns what was stored) is answered by the server
running the writes kept so far, then that call, in one transaction it rolls back
(``commit: false``): reads see the block's own writes, and a write that fails is raised
at its call, as with a database. The writes that return nothing (``log_batch``,
``set_run_status``, ``record_comparison``) are only kept: their errors (an unknown run)
are raised by the next call that needs an answer, or by the end of the block, which then
keeps nothing. At the end the writes run again, for good, so the values a block saw are
those of the last look: a row another client changed meanwhile is not detected (the
writes' own checks, a name taken or a tag bound, still are, and then nothing is kept).
A block that raises keeps nothing (an inner one drops its own writes only).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import httpx

from trialbook import _http, settings
from trialbook.core.entities import (
    Artifact,
    DatasetTag,
    DatasetVersion,
    Decision,
    Evaluation,
    Note,
    Project,
    ProjectCounts,
    ProtocolChange,
    RunEnding,
    RunRecord,
    RunRow,
    RunsPage,
    SeriesSummary,
    Ship,
)
from trialbook.errors import Forbidden, StorageError, Unauthorized
from trialbook.store import codec
from trialbook.store.base import PointTuple

__all__ = ["API_PATH", "CONNECT_TIMEOUT_S", "READ_TIMEOUT_S", "RemoteStore", "refused_access"]

API_PATH = "/api/v1/store"
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 60.0
# writes that answer nothing: inside a transaction they are kept without a round trip
_SILENT_WRITES = frozenset({"log_batch", "set_run_status", "record_comparison"})


class _Pending(threading.local):
    """The calls a transaction of this thread keeps, ``None`` outside of one."""

    calls: list[dict[str, Any]] | None = None


class RemoteStore:
    """The book served at ``uri`` (``http(s)://host:port``, maybe with a path prefix).

    ``client``: an ``httpx.Client`` to send requests with instead of one of the store's
    own (its ``base_url``, when it has none, is set to ``uri``); the store closes it on
    ``close``."""

    remote = True  # a server's book (``outbox.is_remote``)

    def __init__(self, uri: str, *, client: httpx.Client | None = None, token: str | None = None) -> None:
        self.uri = uri.rstrip("/")
        if token is not None:
            self._token_source: str | None = "given to the client" if token else None
        else:
            token = settings.token(self.uri)
            self._token_source = settings.token_source(self.uri)
        headers = _http.bearer(token, self._token_source)
        if client is None:
            client = _http.client(
                base_url=self.uri,
                timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                headers=headers,
            )
        else:
            client.headers.update(headers)
            if not str(client.base_url):
                client.base_url = httpx.URL(self.uri)
        self._client = client
        self._pending = _Pending()

    def __repr__(self) -> str:
        return f"RemoteStore({self.uri!r})"

    # the store itself ----------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        """``False``: what the server lets a client write is the server's to say."""
        return False

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All of the block's writes or none (see the module docstring)."""
        outer = self._pending.calls is None
        if outer:
            self._pending.calls = []
        calls = self._pending.calls
        assert calls is not None
        mark = len(calls)
        try:
            yield
        except BaseException:
            del calls[mark:]
            if outer:
                self._pending.calls = None
            raise
        if outer:
            self._pending.calls = None
            if calls:
                self._post(f"{API_PATH}/_batch", {"calls": calls, "commit": True}, "a transaction")

    def close(self) -> None:
        self._client.close()

    # the wire --------------------------------------------------------------------------
    def _call(self, method: str, **kwargs: Any) -> Any:
        one = {"method": method, "kwargs": codec.encode(kwargs)}
        calls = self._pending.calls
        if calls is None or (not calls and method in codec.READS):
            return codec.decode(self._post(f"{API_PATH}/{method}", {"kwargs": one["kwargs"]}, method))
        if method in _SILENT_WRITES:
            calls.append(one)
            return None
        result = self._post(f"{API_PATH}/_batch", {"calls": [*calls, one], "commit": False}, method)
        if method in codec.WRITES:
            calls.append(one)
        return codec.decode(result)

    def _post(self, path: str, body: dict[str, Any], what: str) -> Any:
        try:
            response = self._client.post(path, json=body)
        except httpx.TimeoutException:
            raise StorageError(
                f"the trialbook server at {self.uri} did not answer {what} in time "
                f"(connect {CONNECT_TIMEOUT_S:g} s, read {READ_TIMEOUT_S:g} s)"
            ) from None
        except httpx.HTTPError as exc:
            raise StorageError(f"cannot reach the trialbook server at {self.uri} ({what}): {exc}") from None
        return self._result(response, what)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, *, what: str) -> Any:
        """The JSON answer of ``GET {server}{path}`` (a route of the server's JSON API, not
        the store's), with this store's token; errors as the store's calls raise them."""
        try:
            given = {k: v for k, v in (params or {}).items() if v is not None}
            response = self._client.get(path, params=given)
        except httpx.TimeoutException:
            raise StorageError(f"the trialbook server at {self.uri} did not answer {what} in time") from None
        except httpx.HTTPError as exc:
            raise StorageError(f"cannot reach the trialbook server at {self.uri} ({what}): {exc}") from None
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                pass
        refused = refused_access(response, self.uri, source=self._token_source)
        if refused is not None:
            raise refused
        raise StorageError(
            f"the trialbook server at {self.uri} refused {what}: {response.status_code} "
            f"{_http.error_detail(response)} (is it a trialbook server of this version?)"
        )

    def _result(self, response: httpx.Response, what: str) -> Any:
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if response.status_code == 200 and isinstance(doc, dict) and "result" in doc:
            return doc["result"]
        refused = refused_access(response, self.uri, source=self._token_source)
        if refused is not None:
            raise refused
        error = codec.decode_error(doc) if isinstance(doc, dict) else None
        if error is not None:
            raise error
        detail = doc.get("detail") if isinstance(doc, dict) else None
        shown = str(detail) if detail else response.text.strip()[:200] or response.reason_phrase
        if response.status_code >= 500:
            raise StorageError(
                f"the trialbook server at {self.uri} failed on {what}: {response.status_code} {shown}"
            )
        raise StorageError(
            f"the trialbook server at {self.uri} refused {what}: {response.status_code} {shown} "
            "(is it a trialbook server of this version?)"
        )

    # projects --------------------------------------------------------------------------
    def ensure_project(self, name: str) -> Project:
        result: Project = self._call("ensure_project", name=name)
        return result

    def create_project(self, name: str) -> Project:
        result: Project = self._call("create_project", name=name)
        return result

    def get_project(self, name: str) -> Project:
        result: Project = self._call("get_project", name=name)
        return result

    def list_projects(self) -> list[Project]:
        result: list[Project] = self._call("list_projects")
        return result

    def update_protocol(
        self, name: str, changes: Mapping[str, Any], *, reason: str | None, who: str
    ) -> Project:
        result: Project = self._call("update_protocol", name=name, changes=changes, reason=reason, who=who)
        return result

    def protocol_history(self, name: str) -> list[ProtocolChange]:
        result: list[ProtocolChange] = self._call("protocol_history", name=name)
        return result

    # runs ------------------------------------------------------------------------------
    def create_run(self, run: RunRecord) -> RunRecord:
        result: RunRecord = self._call("create_run", run=run)
        return result

    def get_run(self, project: str, name: str) -> RunRecord:
        result: RunRecord = self._call("get_run", project=project, name=name)
        return result

    def get_run_by_id(self, run_id: str) -> RunRecord:
        result: RunRecord = self._call("get_run_by_id", run_id=run_id)
        return result

    def find_runs(self, name: str) -> list[RunRecord]:
        result: list[RunRecord] = self._call("find_runs", name=name)
        return result

    def list_runs(self, project: str | None = None) -> list[RunRecord]:
        result: list[RunRecord] = self._call("list_runs", project=project)
        return result

    def set_run_status(
        self,
        run_id: str,
        status: str,
        *,
        ended_at: float | None = None,
        heartbeat_at: float | None = None,
        end_reason: str | None = None,
    ) -> None:
        self._call(
            "set_run_status",
            run_id=run_id,
            status=status,
            ended_at=ended_at,
            heartbeat_at=heartbeat_at,
            end_reason=end_reason,
        )

    def count_unwritten(self, run_id: str, delta: int) -> int:
        result: int = self._call("count_unwritten", run_id=run_id, delta=delta)
        return result

    def get_runs_by_name(self, project: str, names: Iterable[str]) -> list[RunRecord]:
        result: list[RunRecord] = self._call("get_runs_by_name", project=project, names=list(names))
        return result

    def run_names(self, run_ids: Iterable[str]) -> dict[str, str]:
        result: dict[str, str] = self._call("run_names", run_ids=list(run_ids))
        return result

    def child_runs(self, run_id: str) -> list[RunRecord]:
        result: list[RunRecord] = self._call("child_runs", run_id=run_id)
        return result

    # metrics ---------------------------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        points: Sequence[PointTuple] | Mapping[str, Mapping[int, float]],
        *,
        heartbeat_at: float | None = None,
        ending: RunEnding | None = None,
    ) -> None:
        self._call(
            "log_batch", run_id=run_id, points=codec.Points(points), heartbeat_at=heartbeat_at, ending=ending
        )

    def get_summaries(
        self, run_ids: Iterable[str], keys: Iterable[str] | None = None
    ) -> dict[str, dict[str, SeriesSummary]]:
        result: dict[str, dict[str, SeriesSummary]] = self._call(
            "get_summaries", run_ids=list(run_ids), keys=None if keys is None else list(keys)
        )
        return result

    def get_history(self, run_ids: Iterable[str], key: str) -> dict[str, list[tuple[int, float]]]:
        result: dict[str, list[tuple[int, float]]] = self._call("get_history", run_ids=list(run_ids), key=key)
        return result

    def get_all_history(self, run_id: str) -> dict[str, list[tuple[int, float]]]:
        result: dict[str, list[tuple[int, float]]] = self._call("get_all_history", run_id=run_id)
        return result

    def history_since(
        self,
        run_ids: Iterable[str],
        keys: Iterable[str] | None = None,
        since_epoch: int | None = None,
    ) -> dict[str, dict[str, list[tuple[int, float]]]]:
        result: dict[str, dict[str, list[tuple[int, float]]]] = self._call(
            "history_since",
            run_ids=list(run_ids),
            keys=None if keys is None else list(keys),
            since_epoch=since_epoch,
        )
        return result

    # records ---------------------------------------------------------------------------
    def add_evaluation(self, evaluation: Evaluation) -> Evaluation:
        result: Evaluation = self._call("add_evaluation", evaluation=evaluation)
        return result

    def list_evaluations(self, run_ids: Iterable[str], *, reveal: bool = False) -> list[Evaluation]:
        result: list[Evaluation] = self._call("list_evaluations", run_ids=list(run_ids), reveal=reveal)
        return result

    def add_artifact(self, artifact: Artifact) -> Artifact:
        result: Artifact = self._call("add_artifact", artifact=artifact)
        return result

    def list_artifacts(self, run_id: str, *, reveal: bool = False) -> list[Artifact]:
        result: list[Artifact] = self._call("list_artifacts", run_id=run_id, reveal=reveal)
        return result

    def set_note(self, run_id: str, fields: Mapping[str, str], *, who: str) -> Note:
        result: Note = self._call("set_note", run_id=run_id, fields=fields, who=who)
        return result

    def get_notes(self, run_ids: Iterable[str]) -> dict[str, Note]:
        result: dict[str, Note] = self._call("get_notes", run_ids=list(run_ids))
        return result

    def note_history(self, run_id: str) -> list[Note]:
        result: list[Note] = self._call("note_history", run_id=run_id)
        return result

    def search_notes(self, text: str, *, project: str | None = None, limit: int = 50) -> list[Note]:
        result: list[Note] = self._call("search_notes", text=text, project=project, limit=limit)
        return result

    # decisions -------------------------------------------------------------------------
    def add_decision(
        self, decision: Decision, *, reveal_budget: int | None = None, evidence: str | None = None
    ) -> Decision:
        result: Decision = self._call(
            "add_decision", decision=decision, reveal_budget=reveal_budget, evidence=evidence
        )
        return result

    def list_decisions(self, project: str | None = None) -> list[Decision]:
        result: list[Decision] = self._call("list_decisions", project=project)
        return result

    def find_decision(self, project: str, evidence: str) -> Decision | None:
        result: Decision | None = self._call("find_decision", project=project, evidence=evidence)
        return result

    def record_comparison(
        self, project: str, run_ids: Sequence[str], metric: str, *, exploratory: bool, who: str
    ) -> None:
        self._call(
            "record_comparison",
            project=project,
            run_ids=list(run_ids),
            metric=metric,
            exploratory=exploratory,
            who=who,
        )

    def first_comparison_at(self, project: str) -> float | None:
        result: float | None = self._call("first_comparison_at", project=project)
        return result

    def ship_run(
        self,
        project: str,
        run_id: str,
        *,
        decision_id: str | None,
        forced: bool,
        reason: str | None,
        who: str,
    ) -> Ship:
        result: Ship = self._call(
            "ship_run",
            project=project,
            run_id=run_id,
            decision_id=decision_id,
            forced=forced,
            reason=reason,
            who=who,
        )
        return result

    def list_ships(self, project: str) -> list[Ship]:
        result: list[Ship] = self._call("list_ships", project=project)
        return result

    # datasets --------------------------------------------------------------------------
    def add_dataset_version(self, version: DatasetVersion) -> DatasetVersion:
        result: DatasetVersion = self._call("add_dataset_version", version=version)
        return result

    def get_dataset_version(self, name: str, digest: str) -> DatasetVersion:
        result: DatasetVersion = self._call("get_dataset_version", name=name, digest=digest)
        return result

    def list_dataset_versions(self, name: str | None = None) -> list[DatasetVersion]:
        result: list[DatasetVersion] = self._call("list_dataset_versions", name=name)
        return result

    def add_tagged_version(self, version: DatasetVersion, tag: str) -> DatasetTag:
        result: DatasetTag = self._call("add_tagged_version", version=version, tag=tag)
        return result

    def tag_version(self, version: DatasetVersion, tag: str) -> tuple[DatasetTag, bool]:
        result: tuple[DatasetTag, bool] = self._call("tag_version", version=version, tag=tag)
        return result

    def set_tag(self, name: str, tag: str, digest: str) -> DatasetTag:
        result: DatasetTag = self._call("set_tag", name=name, tag=tag, digest=digest)
        return result

    def get_tag(self, name: str, tag: str) -> DatasetTag:
        result: DatasetTag = self._call("get_tag", name=name, tag=tag)
        return result

    def list_tags(self, name: str | None = None) -> list[DatasetTag]:
        result: list[DatasetTag] = self._call("list_tags", name=name)
        return result

    # queries ---------------------------------------------------------------------------
    def run_rows(self, project: str, key: str) -> list[RunRow]:
        result: list[RunRow] = self._call("run_rows", project=project, key=key)
        return result

    def runs_page(
        self,
        project: str,
        key: str,
        direction: str,
        *,
        statuses: Sequence[str] = (),
        dataset: str | None = None,
        tag: str | None = None,
        text: str | None = None,
        sort: str = "rank",
        descending: bool | None = None,
        offset: int = 0,
        limit: int = 50,
        stale_before: float | None = None,
    ) -> RunsPage:
        result: RunsPage = self._call(
            "runs_page",
            project=project,
            key=key,
            direction=direction,
            statuses=list(statuses),
            dataset=dataset,
            tag=tag,
            text=text,
            sort=sort,
            descending=descending,
            offset=offset,
            limit=limit,
            stale_before=stale_before,
        )
        return result

    def project_counts(self, stale_before: float | None = None) -> dict[str, ProjectCounts]:
        result: dict[str, ProjectCounts] = self._call("project_counts", stale_before=stale_before)
        return result

    def project_datasets(self, project: str) -> list[str]:
        result: list[str] = self._call("project_datasets", project=project)
        return result

    def series_keys(self, run_ids: Iterable[str]) -> list[str]:
        result: list[str] = self._call("series_keys", run_ids=list(run_ids))
        return result

    def sparklines(
        self, run_ids: Iterable[str], key: str, points: int = 48
    ) -> dict[str, list[tuple[int, float]]]:
        result: dict[str, list[tuple[int, float]]] = self._call(
            "sparklines", run_ids=list(run_ids), key=key, points=points
        )
        return result


def refused_access(
    response: httpx.Response, uri: str, *, source: str | None
) -> Unauthorized | Forbidden | None:
    """The error of a server's 401 or 403 (None for any other answer): ``Unauthorized``
    saying how to give a token (``source``: where the one sent came from, None for none),
    or ``Forbidden`` with the server's message (who, the role held and the role needed)."""
    if response.status_code == 401:
        return _http.unauthorized(uri, source=source)
    if response.status_code == 403:
        detail = _http.error_detail(response)
        return Forbidden(
            detail or f"the trialbook server at {uri} refused this: the token's role does not allow it"
        )
    return None
